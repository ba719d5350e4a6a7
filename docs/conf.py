"""Sphinx configuration of the course site (``make site``; see vidlearn/site.py for the build).

The build copies ``chapters/*.py`` and ``exercises/*.py`` into a staging source tree beside this
folder's pages, generates the overview (the README's chapter table) and the errata page there, and
runs Sphinx with ``-c docs``: this file configures that tree and is never one of its sources.

Where the course lives (the launch buttons' target) is set in one place, by environment variables
read below. The repository default is a placeholder (the code cannot know where your copy of the
course is published): set VIDLEARN_REPOSITORY_URL before publishing, or the Binder and JupyterHub
buttons point at a repository that may not exist.

    VIDLEARN_REPOSITORY_URL     the course's GitHub repository (Binder and nbgitpuller pull it)
    VIDLEARN_REPOSITORY_BRANCH  its branch (default: main)
    VIDLEARN_JUPYTERHUB_URL     your JupyterHub (default: http://localhost:8000, JupyterHub's own default)
    VIDLEARN_BINDERHUB_URL      a BinderHub (default: https://mybinder.org)
"""

import os
from pathlib import Path

import jupyter_server_mathjax

project = "vidlearn — attention for video"
author = "the vidlearn authors"
copyright = "the vidlearn authors, MIT licence"

REPOSITORY_URL = os.environ.get("VIDLEARN_REPOSITORY_URL", "https://github.com/vidlearn/vidlearn")
REPOSITORY_BRANCH = os.environ.get("VIDLEARN_REPOSITORY_BRANCH", "main")
JUPYTERHUB_URL = os.environ.get("VIDLEARN_JUPYTERHUB_URL", "http://localhost:8000")
BINDERHUB_URL = os.environ.get("VIDLEARN_BINDERHUB_URL", "https://mybinder.org")

extensions = ["myst_nb", "sphinx_copybutton", "sphinx_book_theme"]

# The chapters and exercises are Jupytext percent files; .md pages are MyST notebooks-or-not.
nb_custom_formats = {".py": "vidlearn.site.read_percent"}  # jupytext, py:percent
source_suffix = {".md": "myst-nb", ".py": "myst-nb"}
# conf.py is not in the staging tree (-c docs), but never let a .py that is not course material
# become a notebook to execute.
exclude_patterns = ["conf.py", "_build", "**/.ipynb_checkpoints", "jupyter_execute", ".jupyter_cache"]

# Chapters run at build time (every claim in a chapter is an assertion); a failing cell stops the
# build (vidlearn/site.py names the chapter, the cell and its line). Exercises are the student's to run.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 600
nb_execution_excludepatterns = ["exercises/*"]
nb_execution_show_tb = True
nb_merge_streams = True  # printed text as JupyterLab shows it
nb_output_stderr = "show"  # progress bars keep their last state (nb_merge_streams), as in JupyterLab

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 6  # the errata page links chapter sections by their heading

# MathJax 2.7 from the jupyter-server-mathjax package, served from the site itself (no CDN).
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
mathjax2_config = {
    "tex2jax": {
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processRefs": False,
        "processEnvironments": True,
        "ignoreClass": "tex2jax_ignore|mathjax_ignore|document",
        "processClass": "tex2jax_process|mathjax_process|math|output_area",
    },
    "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web",
                 "imageFont": None},
    "messageStyle": "none",
}
MATHJAX_STATIC = Path(jupyter_server_mathjax.__file__).parent / "static"

html_theme = "sphinx_book_theme"
html_title = project
html_sourcelink_suffix = ""  # the source download is the .py itself, not .py.txt
html_last_updated_fmt = None
html_use_index = False  # no index entries in the course: no empty genindex page
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": REPOSITORY_BRANCH,
    "path_to_docs": "",  # the staging tree mirrors the repository: chapters/…, exercises/…
    "use_download_button": True,
    "use_repository_button": False,
    "use_source_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "launch_buttons": {
        "binderhub_url": BINDERHUB_URL,
        "jupyterhub_url": JUPYTERHUB_URL,
        "notebook_interface": "jupyterlab",
    },
    # nothing from a CDN or an icon service: the theme's own fonts and icons are bundled
    "icon_links": [],
}
html_context = {"default_mode": "auto"}  # light or dark as the reader's system prefers; switchable



def _notebook_download(app, pagename, templatename, context, doctree):
    """Offer every notebook page (chapters and exercises, .py sources) as .ipynb too: the executed
    notebook for a chapter, the unexecuted one for an exercise. Runs before the theme draws its
    download menu, which lists ``ipynb_source``."""
    import jupytext

    source = Path(app.srcdir) / f"{pagename}.py"
    if not source.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if executed.is_file():
        target.write_bytes(executed.read_bytes())
    else:
        jupytext.write(jupytext.read(source), target, fmt="ipynb")
    context["ipynb_source"] = f"{pagename}.ipynb"


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import shutil

    def skip(folder, names):
        if Path(folder).name == "localization":
            return [n for n in names if n != "en"]  # English only: 2 MB less
        return []

    shutil.copytree(MATHJAX_STATIC, Path(app.outdir) / "_static" / "mathjax", ignore=skip, dirs_exist_ok=True)


def _one_document_a_chunk(arguments, nproc, maxbatch=10):
    """Sphinx's parallel build hands each process a run of consecutive documents (here: all seven
    chapters, and so all the execution, in one process). One document a chunk lets ``--jobs``
    processes execute chapters side by side; Sphinx still runs at most that many at a time."""
    return [[a] for a in arguments]


def setup(app):
    import sphinx.builders

    sphinx.builders.make_chunks = _one_document_a_chunk  # read and write phases of a parallel build
    app.connect("html-page-context", _notebook_download, priority=400)
    app.connect("build-finished", _copy_mathjax)
