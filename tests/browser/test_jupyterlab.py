"""The course in a real JupyterLab, driven through a real (headless) Chromium, as a student uses it.

1. Chapter 1 opens as a notebook (a Jupytext ``.py`` source), runs top to bottom with
   Run → Run All Cells, shows no error, and draws the attention heatmap.
2. In exercise 1 a student types the classic wrong answer for ``scaled_dot_product_attention``
   (logits divided by d_k instead of √d_k) into the cell editor, runs the cells up to its
   ``check(...)``, and gets the hint written for exactly that mistake.

Screenshots go to ``build/browser/screenshots/``. Run with ``make test-browser``.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

try:
    from playwright.sync_api import Locator, Page
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
except ImportError as exc:  # pragma: no cover - a clear message instead of a bare ModuleNotFoundError
    raise ImportError("the browser test needs Playwright: pip install -e '.[browser]' (make test-browser)") from exc

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "browser" / "screenshots"  # made by the `lab` fixture (conftest.py)
CHAPTER = "chapters/01_scaled_dot_product_attention.py"
EXERCISE = "exercises/ex01_attention.py"
QUESTION = "ex01.scaled_dot_product_attention"
MISCONCEPTION = "divides by d_k"

KERNEL_TIMEOUT_S = 90  # kernel started and idle
RUN_TIMEOUT_S = 180  # chapter 1 runs in about 15 s on 2 cores

# An error output is rendered exactly like stderr in JupyterLab 4 (a .jp-OutputArea-output with
# data-mime-type="application/vnd.jupyter.stderr", no class of its own), so it is told apart by its
# text: IPython's traceback header, or a line that starts with the exception's name (a SyntaxError
# has no "Traceback" line). Warnings on stderr (tqdm's "TqdmWarning: ...") do not match.
ERROR_PATTERN = r"Traceback \(most recent call last\)|^\s*[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b"
STDERR = "application/vnd.jupyter.stderr"

# The student's answers, typed into the cell editor key by key. Part 2 needs a working softmax
# (part 1): the misconception is recognised only if the answer behaves exactly like it on every
# test case, including the query whose keys are all masked (a zero row, not NaN).
SOFTMAX_ANSWER = """\
def softmax(x, dim=-1):
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m)
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return e / torch.where(s == 0, torch.ones_like(s), s)"""

WRONG_ATTENTION_ANSWER = """\
def scaled_dot_product_attention(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / q.shape[-1]  # divides by d_k, not sqrt(d_k)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return softmax(logits, dim=-1) @ v"""

# Everything the test reads from the page, one call: per code cell, its prompt, source, outputs, images.
CELLS_JS = """
(panel) => [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')].map((cell) => ({
  prompt: (cell.querySelector('.jp-InputArea-prompt')?.innerText || '').trim(),
  source: [...cell.querySelectorAll('.jp-InputArea-editor .cm-line')].map((l) => l.textContent).join('\\n'),
  outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map((o) => ({
    mime: o.getAttribute('data-mime-type') || '',
    text: o.innerText,
  })),
  images: [...cell.querySelectorAll('.jp-OutputArea-output img')].map((img) => ({
    complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
  })),
}))
"""

# True once a run has finished: no cell queued or running ([*]), the kernel idle, and either the
# cells asked for have an execution count, or an error stopped the run (JupyterLab then leaves the
# rest of the queue unexecuted).
RUN_FINISHED_JS = """
([panel, upTo, errorPattern]) => {
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const prompts = cells.map((c) => (c.querySelector('.jp-InputArea-prompt')?.innerText || '').trim());
  if (!cells.length || prompts.some((p) => p.includes('*'))) return false;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  if (indicator && indicator.getAttribute('data-status') !== 'idle') return false;
  const wanted = prompts.slice(0, upTo < 0 ? prompts.length : upTo + 1);
  if (wanted.every((p) => /^\\[\\d+\\]:$/.test(p))) return true;
  const error = new RegExp(errorPattern, 'm');
  return [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .some((o) => error.test(o.innerText));
}
"""


# ----------------------------------------------------------------------------- helpers


def _fail(page: Page, name: str, message: str, focus: Locator | None = None) -> None:
    """Fail with ``message``, after a screenshot of the page (scrolled to ``focus``, the cell at fault)."""
    shot = SCREENSHOTS / f"FAILED-{name}.png"
    try:
        if focus is not None:
            focus.scroll_into_view_if_needed(timeout=5_000)
        page.screenshot(path=str(shot), timeout=10_000)
        message += f"\n(screenshot: {shot})"
    except Exception as exc:  # noqa: BLE001 - report the real failure even without a screenshot
        message += f"\n(no screenshot: {exc})"
    pytest.fail(message, pytrace=False)


def _page_state(page: Page) -> str:
    """What a person would see that explains a stuck page: dialogs, the kernel status, prompts."""
    try:
        return page.evaluate(
            """() => {
              const dialogs = [...document.querySelectorAll('.jp-Dialog')].map((d) => d.innerText.trim());
              const status = [...document.querySelectorAll('.jp-StatusBar-Item')]
                .map((e) => e.innerText.trim()).filter((t) => t.includes('|'));
              const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                .map((e) => e.innerText.trim());
              return `dialogs: ${JSON.stringify(dialogs)}; kernel: ${JSON.stringify(status)}; `
                + `prompts: ${prompts.join(' ')}`;
            }"""
        )
    except Exception as exc:  # noqa: BLE001
        return f"(page state unavailable: {exc})"


def _wait(page: Page, name: str, js: str, arg=None, *, timeout_s: float, what: str,
          focus: Locator | None = None) -> None:
    try:
        page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=250)
        return
    except PlaywrightTimeoutError:
        pass
    _fail(page, name, f"timed out after {timeout_s:g}s waiting for {what}; {_page_state(page)}", focus)


def _open_notebook(page: Page, lab, path: str, name: str) -> Locator:
    """Open a Jupytext .py file through its /lab/tree URL and wait for its kernel to be idle."""
    page.goto(lab.url(path, workspace=name), wait_until="domcontentloaded", timeout=60_000)
    opened = page.locator("#jp-main-dock-panel .jp-NotebookPanel, #jp-main-dock-panel .jp-FileEditor").first
    try:
        opened.wait_for(state="visible", timeout=60_000)
    except PlaywrightTimeoutError:
        opened = None
    if opened is None:
        _fail(page, name, f"{path} did not open within 60 s; {_page_state(page)}")
    if page.locator("#jp-main-dock-panel .jp-NotebookPanel").count() == 0:
        _fail(page, name, f"{path} opened in the text editor, not as a notebook: the default viewer for "
              "Python files is not 'Jupytext Notebook' (see LAB_SETTINGS in conftest.py)")
    panel = page.locator("#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)").first
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for(state="attached")
    _wait(
        page, name,
        """(panel) => {
          const name = panel.querySelector('.jp-KernelName')?.innerText.trim() || '';
          const idle = [...document.querySelectorAll('.jp-StatusBar-Item')]
            .some((e) => /\\|\\s*Idle$/.test(e.innerText.trim()));
          return name && name !== 'No Kernel' && idle && !document.querySelector('.jp-Dialog');
        }""",
        panel.element_handle(), timeout_s=KERNEL_TIMEOUT_S, what=f"the kernel of {path} to start and be idle",
    )
    return panel


def _run_menu(page: Page, command: str) -> None:
    """Click Run → <item> in the menu bar (``command`` is the item's data-command)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def _cells(panel: Locator) -> list[dict]:
    return panel.evaluate(CELLS_JS)


def _code_cells_of(path: Path) -> list[str]:
    return [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]


def _index_of(sources: list[str], predicate, what: str) -> int:
    hits = [i for i, s in enumerate(sources) if predicate(s)]
    assert hits, f"no code cell {what}: the notebook changed, update this test"
    return hits[0]


def _first_line(source: str) -> str:
    return source.strip().splitlines()[0] if source.strip() else ""


def _check_dom_matches(page: Page, name: str, cells: list[dict], sources: list[str], path: str) -> None:
    """The page's code cells are the file's code cells (so an index means the same cell in both)."""
    if len(cells) != len(sources) or any(
        _first_line(c["source"]) != _first_line(s) for c, s in zip(cells, sources)
    ):
        shown = [_first_line(c["source"]) for c in cells]
        _fail(page, name, f"the notebook page does not show the code cells of {path}:\n"
              f"page: {shown}\nfile: {[_first_line(s) for s in sources]}")


def _error_outputs(cells: list[dict]) -> list[tuple[int, dict, str]]:
    pattern = re.compile(ERROR_PATTERN, re.M)
    return [
        (i, cell, out["text"])
        for i, cell in enumerate(cells)
        for out in cell["outputs"]
        if out["mime"] == STDERR and pattern.search(out["text"])
    ]


def _describe(i: int, cell: dict) -> str:
    return f"code cell {i + 1} ({cell['prompt'] or 'no prompt'}) `{_first_line(cell['source'])}`"


def _assert_no_errors(page: Page, name: str, panel: Locator, cells: list[dict], upto: int | None = None) -> None:
    code_cells = panel.locator(".jp-Notebook .jp-CodeCell")
    errors = _error_outputs(cells)
    if errors:
        text = "\n\n".join(f"{_describe(i, c)} shows an error:\n{t.strip()[-3000:]}" for i, c, t in errors)
        _fail(page, name, text, code_cells.nth(errors[0][0]))
    wanted = cells if upto is None else cells[: upto + 1]
    not_run = [i for i, c in enumerate(wanted) if not re.fullmatch(r"\[\d+\]:", c["prompt"])]
    if not_run:
        _fail(page, name, "cells without an execution count after the run:\n"
              + "\n".join(_describe(i, cells[i]) for i in not_run), code_cells.nth(not_run[0]))


def _type_into_cell(page: Page, name: str, cell: Locator, code: str) -> None:
    """Replace a cell's source by typing ``code`` into its CodeMirror editor, as a person would.

    The editor indents a new line by itself; Shift+Home right after Enter selects exactly that
    automatic indentation (the cursor sits at its end), and typing the line's own indentation
    replaces it. The result is compared with ``code`` character for character.
    """
    cell.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    for i, line in enumerate(code.split("\n")):
        if i:
            page.keyboard.press("Enter")
            page.keyboard.press("Shift+Home")
        if line:
            page.keyboard.type(line)
    page.keyboard.press("Escape")  # back to command mode
    typed = cell.evaluate(
        "(c) => [...c.querySelectorAll('.jp-InputArea-editor .cm-line')].map((l) => l.textContent).join('\\n')"
    )
    if typed != code:
        _fail(page, name, f"typing into the cell editor gave\n{typed}\ninstead of\n{code}", cell)


def _screenshot_notebook(page: Page, panel: Locator, path: Path) -> None:
    """The whole notebook in one picture: grow the viewport until the notebook needs no scrolling."""
    scroll_to_top = """(panel) => {
      const scroller = panel.querySelector('.jp-WindowedPanel-outer') || panel.querySelector('.jp-Notebook');
      scroller.scrollTop = 0;
      return scroller.scrollHeight - scroller.clientHeight;
    }"""
    size = page.viewport_size
    extra = panel.evaluate(scroll_to_top)
    page.set_viewport_size({"width": size["width"], "height": min(size["height"] + max(extra, 0) + 40, 16_000)})
    try:
        panel.evaluate(scroll_to_top)
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


# ----------------------------------------------------------------------------- tests


def test_chapter1_runs_in_jupyterlab_and_draws_the_attention_heatmap(page: Page, lab):
    name = "chapter1"
    sources = _code_cells_of(ROOT / CHAPTER)
    heatmap = _index_of(
        sources, lambda s: "imshow(" in s and "attention weights" in s, "that draws the attention weights with imshow"
    )

    panel = _open_notebook(page, lab, CHAPTER, name)
    _check_dom_matches(page, name, _cells(panel), sources, CHAPTER)

    _run_menu(page, "runmenu:run-all")
    _wait(page, name, RUN_FINISHED_JS, [panel.element_handle(), -1, ERROR_PATTERN],
          timeout_s=RUN_TIMEOUT_S, what="Run All Cells to finish")
    cells = _cells(panel)
    _assert_no_errors(page, name, panel, cells)

    # the heatmap: an image in that cell's output, decoded, with a real size
    heatmap_cell = panel.locator(".jp-Notebook .jp-CodeCell").nth(heatmap)
    _wait(
        page, name,
        """(cell) => [...cell.querySelectorAll('.jp-OutputArea-output img')]
          .some((img) => img.complete && img.naturalWidth > 0)""",
        heatmap_cell.element_handle(), timeout_s=15, focus=heatmap_cell,
        what=f"an image (the attention heatmap) in the output of {_describe(heatmap, cells[heatmap])}, "
             f"whose outputs are {cells[heatmap]['outputs'] or '(none)'}",
    )
    images = _cells(panel)[heatmap]["images"]
    assert images and images[0]["width"] > 0 and images[0]["height"] > 0, images

    heatmap_cell.scroll_into_view_if_needed()
    heatmap_cell.screenshot(path=str(SCREENSHOTS / "chapter1-heatmap-cell.png"))
    page.screenshot(path=str(SCREENSHOTS / "chapter1-viewport.png"))
    _screenshot_notebook(page, panel, SCREENSHOTS / "chapter1-full.png")


def test_exercise1_wrong_scaling_gets_the_targeted_hint(page: Page, lab):
    from vidlearn.grading.questions import get_question

    name = "exercise1"
    question = get_question(QUESTION)
    mistakes = {m.name: m for m in question.misconceptions}
    assert MISCONCEPTION in mistakes, f"{QUESTION} has no misconception {MISCONCEPTION!r}: {sorted(mistakes)}"
    hint = mistakes[MISCONCEPTION].hints[0]  # the first tier, which check() prints with the feedback

    sources = _code_cells_of(ROOT / EXERCISE)
    softmax_def = _index_of(sources, lambda s: s.lstrip().startswith("def softmax("), "defining softmax")
    attention_def = _index_of(
        sources, lambda s: s.lstrip().startswith("def scaled_dot_product_attention("), "defining the attention"
    )
    check_cell = _index_of(sources, lambda s: f'check("{QUESTION}"' in s, f'with check("{QUESTION}", ...)')
    assert softmax_def < attention_def < check_cell

    panel = _open_notebook(page, lab, EXERCISE, name)
    _check_dom_matches(page, name, _cells(panel), sources, EXERCISE)
    code_cells = panel.locator(".jp-Notebook .jp-CodeCell")
    _type_into_cell(page, name, code_cells.nth(softmax_def), SOFTMAX_ANSWER)
    _type_into_cell(page, name, code_cells.nth(attention_def), WRONG_ATTENTION_ANSWER)

    # select the check cell, then Run → Run All Above Selected Cell, Run → Run Selected Cell
    code_cells.nth(check_cell).locator(".jp-InputArea-prompt").click()
    _run_menu(page, "notebook:run-all-above")
    _run_menu(page, "notebook:run-cell")
    _wait(page, name, RUN_FINISHED_JS, [panel.element_handle(), check_cell, ERROR_PATTERN],
          timeout_s=RUN_TIMEOUT_S, what=f'the cells up to check("{QUESTION}", ...) to run')
    cells = _cells(panel)
    _assert_no_errors(page, name, panel, cells, upto=check_cell)

    shown = "\n".join(o["text"] for o in cells[check_cell]["outputs"]).strip()
    target = code_cells.nth(check_cell)
    target.scroll_into_view_if_needed()
    target.screenshot(path=str(SCREENSHOTS / "exercise1-check-cell.png"))
    page.screenshot(path=str(SCREENSHOTS / "exercise1-viewport.png"))
    if hint not in shown:
        above = "\n".join(
            f"{_describe(i, c)}:\n" + "\n".join(o["text"] for o in c["outputs"]).strip()
            for i, c in enumerate(cells[:check_cell]) if c["outputs"]
        )
        _fail(page, name, f"the hint for {MISCONCEPTION!r} ({hint!r}) is not in the output of "
              f"{_describe(check_cell, cells[check_cell])}, which shows:\n{shown or '(nothing)'}\n\n"
              f"outputs above it:\n{above or '(none)'}", target)
