"""The built site, page by page: static HTML checks, then headless Chromium.

Every ``.html`` page of the build (the theme's ``_static`` templates and the vendored MathJax
aside) is served on 127.0.0.1 and opened once in Chromium; what happened on each page is
recorded in ``site_visits`` and each test below asserts one property over all pages, listing
every page and problem it finds. ``test_the_checks_catch_a_broken_page`` runs the very same
recording on a deliberately broken page, so none of those checks can pass vacuously.
"""

import ast
import html
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from sphinx_external_toc.parsing import parse_toc_yaml

from backpropgrader import tasks
from conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
NOT_PAGES = ("_static", "_sources", "_images", "mathjax", "reports")  # top-level folders
NON_NETWORK_SCHEMES = ("data", "blob", "about")
NOT_FETCHED_RELS = {"canonical", "alternate", "prev", "next", "index", "search", "author",
                    "license", "help"}  # <link rel=...> that browsers never fetch
SECRET_MARKERS = ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                  "BEGIN MARK SCHEME", "END MARK SCHEME"]
RAW_TEX = ["$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\end{", "$\\"]


def chromium_path():
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("no Chromium found: run `make browser` (Debian's chromium), or set CHROMIUM",
                pytrace=False)


def site_pages(html_dir):
    """Every page of the site, as paths relative to the HTML folder (posix), sorted."""
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir)
        if rel.parts[0] not in NOT_PAGES:
            pages.append(rel.as_posix())
    return pages


# ---------------------------------------------------------------------------- static parsing


class PageParser(HTMLParser):
    """ids, resource URLs, meta refresh and maths elements of one HTML file."""

    RESOURCE_ATTRS = {
        "script": ["src"], "img": ["src", "srcset"], "source": ["src", "srcset"],
        "iframe": ["src"], "video": ["src", "poster"], "audio": ["src"], "embed": ["src"],
        "object": ["data"], "input": ["src"], "track": ["src"], "image": ["href"],
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.resources = []  # (tag, attribute, value)
        self.refresh = None
        self.math_elements = 0
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name" if tag == "a" else None):
            if key and attrs.get(key):
                self.ids.add(attrs[key])
        for attr in self.RESOURCE_ATTRS.get(tag, []):
            if attrs.get(attr):
                self.resources.append((tag, attr, attrs[attr]))
        if tag == "link" and attrs.get("href"):
            rels = set((attrs.get("rel") or "").lower().split())
            if not rels or not rels <= NOT_FETCHED_RELS:
                self.resources.append((tag, "href", attrs["href"]))
        if attrs.get("style") and "url(" in attrs["style"]:
            for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", attrs["style"]):
                self.resources.append((tag, "style", url))
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = re.search(r"url\s*=\s*(\S+)", attrs.get("content") or "", re.I)
            self.refresh = match.group(1).strip("'\"") if match else ""
        if "math" in (attrs.get("class") or "").split():
            self.math_elements += 1

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


_parsed = {}


def parse_page(path):
    path = Path(path)
    if path not in _parsed:
        parser = PageParser()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        parser.close()
        _parsed[path] = parser
    return _parsed[path]


def is_external(url):
    scheme = urlsplit(url).scheme.lower()
    return url.startswith("//") or (scheme not in ("", *NON_NETWORK_SCHEMES))


# ------------------------------------------------------------------------------ the browser


@dataclass
class Visit:
    """Everything that happened while one page was open."""

    page: str
    final_url: str = ""
    console: list = field(default_factory=list)  # (type, text)
    page_errors: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    blocked: list = field(default_factory=list)  # requests that would have left the machine
    failed: list = field(default_factory=list)  # (url, reason or HTTP status)
    mathjax_started: bool = True
    dom: dict = field(default_factory=dict)  # what ANALYSE_JS found

    @property
    def errors(self):
        return [text for kind, text in self.console if kind in ("error", "assert")]


ANALYSE_JS = r"""
async (rawTex) => {
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const root = document.querySelector('article') || document.querySelector('[role=main]')
               || document.body;
  const prose = root.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight')
       .forEach(e => e.remove());
  const text = prose.textContent;
  const rawHits = rawTex.filter(s => text.includes(s)).map(s => {
    const i = text.indexOf(s);
    return s + '  in: ' + JSON.stringify(text.slice(Math.max(0, i - 40), i + 40));
  });
  const isRed = e => {
    const c = getComputedStyle(e).color.replace(/\s/g, '');
    return c === 'rgb(255,0,0)' || /(^|;)\s*color:\s*red\b/.test(e.getAttribute('style') || '');
  };
  const maths = Array.from(document.querySelectorAll('.math'));
  return {
    mathElements: maths.length,
    untypeset: maths.filter(m => !m.querySelector('mjx-container'))
                    .map(m => m.textContent.trim().slice(0, 80)),
    mjxContainers: document.querySelectorAll('mjx-container').length,
    merrors: Array.from(document.querySelectorAll('mjx-merror'))
                  .map(e => e.getAttribute('data-mjx-error') || e.textContent),
    // CHTML draws characters with CSS, so the text comes from the assistive MathML copy.
    redText: Array.from(document.querySelectorAll('mjx-container')).flatMap(c => {
      const red = Array.from(c.querySelectorAll('mjx-mtext')).filter(isRed);
      const named = Array.from(c.querySelectorAll('mtext[mathcolor=red]'))
                         .map(m => m.textContent);
      return red.length === 0 ? [] : (named.length ? named : red.map(() => '(red text)'));
    }),
    rawTex: rawHits,
    links: Array.from(document.querySelectorAll('a[href]'))
                .map(a => [a.getAttribute('href'), a.href]),
    images: images.map(img => ({src: img.getAttribute('src'), url: img.currentSrc || img.src,
                                complete: img.complete, naturalWidth: img.naturalWidth})),
  };
}
"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_context(browser, base):
    """A fresh context that lets only the local server (and data:/blob:) through."""
    context = browser.new_context(service_workers="block")
    context.blocked = []

    def gate(route):
        url = route.request.url
        if url.startswith(base) or urlsplit(url).scheme in NON_NETWORK_SCHEMES:
            route.continue_()
        else:
            context.blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", gate)
    return context


def record_visit(context, base, page_path, html_dir, fulfil=None):
    """Open one page, wait for it (and MathJax) to settle, and record what happened.

    ``fulfil``: optional HTML served at that URL instead of the file (for the self-test).
    """
    visit = Visit(page_path)
    page = context.new_page()
    page.set_default_timeout(30_000)
    url = urljoin(base, page_path)
    if fulfil is not None:
        page.route(url, lambda route: route.fulfill(body=fulfil, content_type="text/html"))
    blocked_before = len(context.blocked)
    page.on("console", lambda m: visit.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
    page.on("request", lambda r: visit.requests.append(r.url))
    page.on("websocket", lambda ws: context.blocked.append(ws.url))
    page.on("requestfailed", lambda r: visit.failed.append((r.url, r.failure)))
    page.on("response", lambda r: r.status >= 400 and visit.failed.append((r.url, r.status)))
    try:
        page.goto(url, wait_until="load")
        target = parse_page(html_dir / page_path).refresh if fulfil is None else None
        if target:  # a redirect page: follow it, the target is checked on its own
            page.wait_for_url(urljoin(url, target))
        page.wait_for_load_state("networkidle")
        if not target:
            if page.evaluate("() => !!document.querySelector('.math, script[src*=mathjax]')"):
                try:
                    page.wait_for_function(
                        "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                        timeout=20_000)
                    page.evaluate("() => MathJax.startup.promise.then(() => true)")
                except Exception as exc:  # noqa: BLE001 - recorded, asserted on later
                    visit.mathjax_started = False
                    visit.page_errors.append(f"MathJax did not start: {exc}")
            visit.dom = page.evaluate(ANALYSE_JS, RAW_TEX)
            page.wait_for_load_state("networkidle")
        visit.final_url = page.url
    finally:
        page.close()
        visit.blocked = context.blocked[blocked_before:]
    return visit


@pytest.fixture(scope="module")
def site_visits(browser, served_book, built_html):
    """{page: Visit} for every page of the site, each opened once."""
    context = new_context(browser, served_book)
    try:
        return {p: record_visit(context, served_book, p, built_html)
                for p in site_pages(built_html)}
    finally:
        context.close()


def problems_by_page(site_visits, check):
    """Run check(visit) -> list of problems on every page; format what was found."""
    found = {page: check(visit) for page, visit in site_visits.items()}
    return "\n".join(f"{page}: {problem}" for page, problems in found.items()
                     for problem in problems)


# ---------------------------------------------------------------- local links and resources


def local_file(url, base, html_dir):
    """The file a same-site URL points at (index.html for a folder), and its fragment."""
    parts = urlsplit(url)
    rel = unquote(parts.path)[len(urlsplit(base).path):]
    path = html_dir / rel
    if rel == "" or rel.endswith("/") or path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


def link_problems(visit, base, html_dir):
    problems = []
    for href, resolved in visit.dom.get("links", []):
        scheme = urlsplit(resolved).scheme.lower()
        if scheme in ("mailto", "javascript", "tel") or not resolved.startswith(base):
            continue  # external links are allowed; they are never fetched (see below)
        path, fragment = local_file(resolved, base, html_dir)
        if not path.is_file():
            problems.append(f"link {href!r} -> missing file {path.relative_to(html_dir)}")
        elif fragment:
            if path.suffix != ".html":
                problems.append(f"link {href!r} has a fragment into a non-HTML file")
            elif fragment not in parse_page(path).ids:
                problems.append(f"link {href!r}: no id {fragment!r} in "
                                f"{path.relative_to(html_dir)}")
    return problems


def image_problems(visit, base, html_dir):
    problems = []
    for img in visit.dom.get("images", []):
        if not img["url"].startswith(base) and urlsplit(img["url"]).scheme != "data":
            problems.append(f"img {img['src']!r} is not served by the book")
            continue
        if img["url"].startswith(base):
            path, _ = local_file(img["url"], base, html_dir)
            if not path.is_file():
                problems.append(f"img {img['src']!r} -> missing file")
        if not img["complete"] or img["naturalWidth"] <= 0:
            problems.append(f"img {img['src']!r} did not load (naturalWidth "
                            f"{img['naturalWidth']})")
    return problems


# ------------------------------------------------------------------------ the browser tests


def test_every_page_is_checked(site_visits):
    """The visits cover the generated pages and every chapter in _toc.yml."""
    site_map = parse_toc_yaml(REPO / "_toc.yml")
    expected = {f"{docname}.html" for docname in site_map} | {
        "index.html", "genindex.html", "search.html"}
    assert expected <= set(site_visits), expected - set(site_visits)


def test_no_console_errors_or_page_errors(site_visits):
    report = problems_by_page(
        site_visits, lambda v: [f"console: {e}" for e in v.errors]
        + [f"page error: {e}" for e in v.page_errors])
    assert not report, "\n" + report


def test_no_request_leaves_the_machine(site_visits, served_book):
    report = problems_by_page(
        site_visits, lambda v: [f"blocked request to {u}" for u in v.blocked]
        + [f"request to {u}" for u in v.requests
           if not u.startswith(served_book) and urlsplit(u).scheme not in NON_NETWORK_SCHEMES])
    assert not report, "\n" + report
    # The recorder did record: every page fetched at least itself.
    assert all(v.requests for v in site_visits.values())


def test_every_resource_loads(site_visits):
    report = problems_by_page(site_visits, lambda v: [f"{u} failed: {why}" for u, why in v.failed])
    assert not report, "\n" + report


def test_mathjax_typesets_all_maths(site_visits, built_html):
    def check(v):
        if not v.dom:  # a redirect page
            return []
        problems = []
        static = parse_page(built_html / v.page).math_elements
        if static and not v.mathjax_started:
            problems.append("has maths but MathJax never started")
        if static and v.dom["mjxContainers"] == 0:
            problems.append(f"{static} maths elements but no mjx-container")
        problems += [f"not typeset: {t!r}" for t in v.dom["untypeset"]]
        problems += [f"MathJax error: {m!r}" for m in v.dom["merrors"]]
        problems += [f"red (undefined macro?): {t!r}" for t in v.dom["redText"]]
        problems += [f"raw TeX left in the text: {t}" for t in v.dom["rawTex"]]
        return problems

    report = problems_by_page(site_visits, check)
    assert not report, "\n" + report
    # The book has maths somewhere, and it was typeset.
    assert sum(v.dom.get("mjxContainers", 0) for v in site_visits.values()) > 0


def test_local_links_and_fragments_resolve(site_visits, served_book, built_html):
    report = problems_by_page(site_visits,
                              lambda v: link_problems(v, served_book, built_html))
    assert not report, "\n" + report
    assert sum(len(v.dom.get("links", [])) for v in site_visits.values()) > 0


def test_images_exist_and_load(site_visits, served_book, built_html):
    report = problems_by_page(site_visits,
                              lambda v: image_problems(v, served_book, built_html))
    assert not report, "\n" + report


def test_redirect_pages_land_on_a_page(site_visits, served_book):
    for page, visit in site_visits.items():
        assert visit.final_url.startswith(served_book), (page, visit.final_url)


BROKEN_ADDITIONS = r"""
<p>Undefined: <span class="math notranslate nohighlight">\(\undefinedmacro x\)</span></p>
<p>Unbalanced: <span class="math notranslate nohighlight">\(\frac{1}{x\)</span></p>
<p>Extra brace: <span class="math notranslate nohighlight">\(\frac{1}{x}}\)</span></p>
<p>Forgotten maths: raw \begin{align} here and $\alpha$ there.</p>
<p><a href="no-such-page.html">gone</a> <a href="#no-such-id">nowhere</a></p>
<img src="no-such-image.png" alt="missing">
<img src="https://example.invalid/cdn.png" alt="external">
<script>console.error("deliberate console error");</script>
<script>null.boom();</script>
"""


def test_the_checks_catch_a_broken_page(browser, served_book, built_html):
    """The recorder and the checks above, on a page broken on purpose in every way they test."""
    with_maths = [p for p in site_pages(built_html) if parse_page(built_html / p).math_elements]
    if not with_maths:
        pytest.skip("no page with maths to break")
    source = (built_html / with_maths[0]).read_text(encoding="utf-8")
    assert "</article>" in source
    broken = source.replace("</article>", BROKEN_ADDITIONS + "</article>", 1)
    fake = (Path(with_maths[0]).parent / "__broken__.html").as_posix()
    context = new_context(browser, served_book)
    try:
        visit = record_visit(context, served_book, fake, built_html, fulfil=broken)
    finally:
        context.close()
    dom = visit.dom
    assert any("deliberate console error" in e for e in visit.errors), visit.console
    assert any("null" in e or "boom" in e for e in visit.page_errors), visit.page_errors
    assert any("example.invalid" in u for u in visit.blocked), visit.blocked
    assert any("no-such-image.png" in u and why == 404 for u, why in visit.failed), visit.failed
    assert any("undefinedmacro" in t for t in dom["redText"]), dom
    assert any("brace" in m for m in dom["merrors"]), dom["merrors"]
    assert any("frac{1}{x" in t for t in dom["untypeset"]), dom["untypeset"]
    assert any(t.startswith("\\begin{") for t in dom["rawTex"]), dom["rawTex"]
    assert any(t.startswith("$\\") for t in dom["rawTex"]), dom["rawTex"]
    links = link_problems(visit, served_book, built_html)
    assert any("no-such-page.html" in p for p in links), links
    assert any("no-such-id" in p for p in links), links
    images = image_problems(visit, served_book, built_html)
    assert any("no-such-image.png" in p and "missing" in p for p in images), images
    assert any("example.invalid" in p for p in images), images


# ------------------------------------------------------------------------ static HTML checks


def test_no_page_loads_anything_from_outside(built_html):
    """No script, stylesheet, image, font or frame is referenced by an external URL.

    Attributes only: sphinx-thebe's inline ``THEBE_JS_URL`` string is inert (thebe is off) and
    the browser tests prove that nothing is fetched from it.
    """
    problems = []
    for page in site_pages(built_html):
        for tag, attr, value in parse_page(built_html / page).resources:
            urls = [u.split()[0] for u in value.split(",")] if attr == "srcset" else [value]
            problems += [f"{page}: <{tag} {attr}={u!r}>" for u in urls if is_external(u)]
    assert not problems, "\n".join(problems)


def test_mathjax_is_served_locally(built_html):
    assert (built_html / "mathjax" / "tex-chtml.js").is_file()
    pages_with_maths = [p for p in site_pages(built_html)
                        if parse_page(built_html / p).math_elements]
    for page in pages_with_maths:
        scripts = [v for t, a, v in parse_page(built_html / page).resources
                   if t == "script" and "mathjax" in v.lower()]
        assert scripts and all(not is_external(s) for s in scripts), (page, scripts)


def build_files(book_build):
    """Every file the build wrote (HTML site, executed notebooks, doctrees, caches)."""
    return [p for p in book_build.build_dir.rglob("*") if p.is_file()]


def searchable_texts(path):
    """The file's text, plus its tag-free text (HTML) or its decoded strings (notebooks)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    texts = [raw]
    if path.suffix == ".html":
        parser = PageParser()
        parser.feed(raw)
        texts.append(html.unescape("".join(parser.text)))
    elif path.suffix in (".ipynb", ".json"):
        try:
            texts.append("\n".join(_strings(json.loads(raw))))
        except ValueError:
            pass
    return texts


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for item in obj:
            yield from _strings(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _strings(item)
    if isinstance(obj, list) and all(isinstance(i, str) for i in obj):
        yield "".join(obj)  # notebook sources are lists of lines


def squash(text):
    return re.sub(r"\s+", " ", text)


def test_no_hidden_tests_or_solution_markers_in_the_build(book_build):
    files = build_files(book_build)
    assert len(files) > 10
    found = [f"{p.relative_to(book_build.build_dir)}: {marker}"
             for p in files for marker in SECRET_MARKERS
             if marker.encode() in p.read_bytes()]
    assert not found, "\n".join(found)


def solution_notebooks():
    return sorted(p for p in (REPO / "solutions").rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def secret_lines(notebook):
    """Distinctive code lines between the solution and hidden-test markers of a notebook."""
    return [line for lines in _marked_lines(notebook).values() for line in lines]


def solution_cell_lines(notebook):
    """Distinctive solution lines of each answer cell, by grade_id."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    answers = {c["metadata"]["nbgrader"]["grade_id"] for c in cells
               if c["metadata"].get("nbgrader", {}).get("solution")}
    return {gid: lines for gid, lines in _marked_lines(notebook).items() if gid in answers}


def _marked_lines(notebook):
    """{grade_id: distinctive lines inside BEGIN/END SOLUTION or HIDDEN TESTS markers}."""
    found = {}
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code":
            continue
        lines = found.setdefault(cell["metadata"].get("nbgrader", {}).get("grade_id", index), [])
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        inside = in_docstring = False
        for line in source.splitlines():
            stripped = line.strip()
            if re.search(r"BEGIN (SOLUTION|HIDDEN TESTS)", stripped):
                inside = True
                continue
            if re.search(r"END (SOLUTION|HIDDEN TESTS)", stripped):
                inside = False
                continue
            quotes = len(re.findall(r'"""|\'\'\'', stripped))
            if in_docstring or re.match(r'^[rRbBuU]?("""|\'\'\')', stripped):
                if quotes % 2 == 1:
                    in_docstring = not in_docstring
                continue
            if (inside and len(squash(stripped)) > 25 and not stripped.startswith("#")
                    and not re.match(r"(import|from)\s", stripped)):
                lines.append(squash(stripped))
    return found


def quoted_package_lines():
    """Lines of the package functions the chapters quote (``literalinclude`` + ``:pyobject:``).

    The book shows these on purpose (a chapter quotes its implementation from the package), so
    they are not secrets even where an answer uses the same line, such as the delta recursion.
    """
    lines = set()
    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)\s*\n((?::\w+:.*\n)*)")
    for chapter in (REPO / "book").rglob("*.md"):
        for target, options in pattern.findall(chapter.read_text(encoding="utf-8")):
            obj = re.search(r":pyobject:\s*(\S+)", options)
            tree = ast.parse((chapter.parent / target).resolve().read_text(encoding="utf-8"))
            for node in tree.body:
                if obj is None or getattr(node, "name", None) == obj.group(1):
                    segment = ast.get_source_segment(
                        (chapter.parent / target).resolve().read_text(encoding="utf-8"), node)
                    lines.update(squash(line.strip()) for line in (segment or "").splitlines())
    return lines


def quoted_functions():
    """{(file, function name): parameter names} for every ``literalinclude :pyobject:`` in book/."""
    quoted = {}
    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)\s*\n((?::\w+:.*\n)*)")
    for chapter in (REPO / "book").rglob("*.md"):
        for target, options in pattern.findall(chapter.read_text(encoding="utf-8")):
            obj = re.search(r":pyobject:\s*(\S+)", options)
            if obj is None:
                continue
            path = (chapter.parent / target).resolve()
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.FunctionDef) and node.name == obj.group(1):
                    quoted[(chapter.name, node.name)] = [a.arg for a in node.args.args]
    return quoted


def asked_functions():
    """{function name: (assignment, parameter names)} for every autograded task declared."""
    return {task.name: (name, list(task.params))
            for name in tasks.NAMES for task in tasks.assignment(name).tasks}


# A task with the name and parameters of a function a chapter quotes, which the assignment
# still asks for because it computes more: keep this list short, and say what the answer adds.
# (test_no_answers.py runs the quoted function through the task's hidden check: it fails.)
EXTENDS = {
    ("scalar.md", "chain_backward"): "the assignment's chain has biases: it returns db as well",
    ("matrix.md", "mlp_backward"): "the assignment's networks have elu layers and a softmax under "
                                   "the squared error: the package's knows neither",
}


def test_chapters_do_not_quote_an_answer():
    quoted, answers = quoted_functions(), asked_functions()
    assert quoted and answers
    leaks = [f"{chapter} quotes {name}{tuple(params)}, which the {answers[name][0]} assignment "
             "asks students to write"
             for (chapter, name), params in quoted.items()
             if name in answers and answers[name][1] == params and (chapter, name) not in EXTENDS]
    assert not leaks, "\n".join(leaks)
    for key in EXTENDS:  # an allowance that no longer applies must go
        assert key in quoted and key[1] in answers, f"stale EXTENDS entry {key}"


def test_no_solution_code_in_the_build(book_build):
    notebooks = solution_notebooks()
    assert notebooks, "solutions/ has no notebook"
    quoted = quoted_package_lines()
    assert quoted, "the chapters quote no package code: is the literalinclude pattern right?"
    secrets = {line: nb.relative_to(REPO) for nb in notebooks for line in secret_lines(nb)
               if line not in quoted}
    assert secrets, f"no solution lines found in {notebooks}: are the nbgrader markers there?"
    # An assignment that merely re-typed the book's quoted code would leave nothing to leak:
    # every answer cell with real code must keep lines of its own.
    for nb in notebooks:
        for gid, lines in solution_cell_lines(nb).items():
            if lines:
                assert set(lines) - quoted, (f"{nb.name}: answer cell {gid} "
                                             "is the book's quoted code")
    leaks = []
    for path in build_files(book_build):
        if "mathjax" in path.relative_to(book_build.build_dir).parts:
            continue  # vendored from django-static-mathjax, byte for byte
        texts = [squash(t) for t in searchable_texts(path)]
        leaks += [f"{path.relative_to(book_build.build_dir)}: {line!r} (from {nb})"
                  for line, nb in secrets.items() if any(line in t for t in texts)]
    assert not leaks, "solution code in the built book:\n" + "\n".join(leaks)
