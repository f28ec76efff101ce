"""MkDocs hooks of the sobol_tf site: the generated pages.

* API reference: one page per name in the ``__all__`` of each documented package, read
  statically (``ast``: nothing is imported, so the docs need no TensorFlow), rendered by
  mkdocstrings; a method's page starts with what it computes, its cost in forward passes
  and its paper.
* Tutorials: the notebooks of ``tutorials/`` rendered by mkdocs-jupyter from where they
  are (not copied, not executed).
* Benchmarks: the figures of ``benchmarks/results/`` served from where they are.
* Benchmark pages: ``<!-- include benchmarks/results/NAME.md -->`` becomes that file.
* Command line: ``<!-- sobol-tf help -->`` in a page becomes the ``--help`` of
  ``sobol-tf`` and of each subcommand, from ``sobol_tf._cli_parser.build_parser`` (which
  imports nothing but argparse).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import pathlib
import re

try:
    from mkdocs.plugins import event_priority
    from mkdocs.structure.files import File, Files
except ImportError:  # the tests read public_names and api_pages without MkDocs
    def event_priority(priority):
        return lambda function: function

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: the packages of the API reference, in the order of the navigation
PACKAGES = (
    "sobol_tf.attributions",
    "sobol_tf.metrics",
    "sobol_tf.concepts",
    "sobol_tf.features_visualizations",
    "sobol_tf.plots",
    "sobol_tf.tasks",
    "sobol_tf.utils_functions",
    "sobol_tf.verification",
)

#: what a method computes, its cost and its paper, shown above its docstring
METHODS = {
    "SobolAttributionMethod": (
        "Total-order Sobol indices of a grid of cells: how much of the score's variance "
        "each cell explains, alone and through its interactions, estimated on quasi-Monte "
        "Carlo masks.",
        "`nb_design * (d + 2)` forward passes per input, d = `grid_size`² cells "
        "(× channels with `per_channel=True`); 2,112 at the defaults (32 × 66); "
        "`nb_design * (d + 1)` with `sobol.EFFICIENT_SETTINGS` (1,040 at nb_design 16, "
        "spent in two stages).",
        "Fel et al., *Look at the Variance! Efficient Black-box Explanations with "
        "Sobol-based Sensitivity Analysis*, NeurIPS 2021",
        "https://arxiv.org/abs/2111.04138"),
    "HsicAttributionMethod": (
        "The Hilbert-Schmidt independence criterion between each cell's binary mask and "
        "the score: how strongly the score depends on the cell being kept.",
        "`nb_design` forward passes per input (500 at the defaults).",
        "Novello, Fel & Vigouroux, *Making Sense of Dependence: Efficient Black-box "
        "Explanations Using Dependence Measure*, NeurIPS 2022",
        "https://arxiv.org/abs/2206.06219"),
    "Rise": (
        "The mean score over random smoothed binary masks, each weighted by the mask: "
        "the expected score given that a pixel is kept.",
        "`nb_samples` forward passes per input (4,000 at the defaults).",
        "Petsiuk, Das & Saenko, *RISE: Randomized Input Sampling for Explanation of "
        "Black-box Models*, BMVC 2018",
        "https://arxiv.org/abs/1806.07421"),
    "Occlusion": (
        "The drop of the score when a patch sliding over the input is set to "
        "`occlusion_value`.",
        "One forward pass per patch position plus one for the clean input: "
        "((H − p) / s + 1) × ((W − p) / s + 1) + 1 for patch p and stride s.",
        "Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, "
        "ECCV 2014",
        "https://arxiv.org/abs/1311.2901"),
    "Lime": (
        "The coefficients of a weighted linear model (Ridge) of the score on random on/off "
        "superpixels.",
        "`nb_samples` forward passes per input (150 at the defaults).",
        "Ribeiro, Singh & Guestrin, *\"Why Should I Trust You?\": Explaining the "
        "Predictions of Any Classifier*, KDD 2016",
        "https://arxiv.org/abs/1602.04938"),
    "KernelShap": (
        "Shapley values of the superpixels, by a regression weighted with the Shapley "
        "kernel (exact for a linear model).",
        "`nb_samples` forward passes per input (800 at the defaults).",
        "Lundberg & Lee, *A Unified Approach to Interpreting Model Predictions*, "
        "NeurIPS 2017",
        "https://arxiv.org/abs/1705.07874"),
    "Eva": (
        "Verified perturbation analysis: the adversarial overlap (a bound, over a whole "
        "L-infinity ball around the input, on how far another class can overtake the "
        "target) and how much it drops when one cell is left unperturbed; the bounds "
        "come from interval (IBP) or CROWN bound propagation, nothing is sampled.",
        "`d + 1` verified bound passes per input, d = `grid_size`² cells (65 at the "
        "defaults), batched; `hybrid_layer` adds `nb_samples` forward passes to the "
        "layer.",
        "Fel, Ducoffe, Vigouroux, Cadène, Capelle, Nicodème & Serre, *Don't Lie to Me! "
        "Robust and Efficient Explainability with Verified Perturbation Analysis*, "
        "CVPR 2023",
        "https://arxiv.org/abs/2202.07728"),
    "ExtremalPerturbation": (
        "The smallest smooth masks of given areas that keep (or remove) the score, "
        "found by gradient descent on the mask.",
        "`steps` forward and backward passes per input and area (`'dual'`: both "
        "variants, twice as many); 800 per area at the defaults. "
        "`explain_channels` optimises masks over a layer's channels instead.",
        "Fong, Patrick & Vedaldi, *Understanding Deep Networks via Extremal "
        "Perturbations and Smooth Masks*, ICCV 2019",
        "https://arxiv.org/abs/1910.08485"),
    "Saliency": (
        "The magnitude of the score's gradient with respect to the input.",
        "One forward and one backward pass per input.",
        "Simonyan, Vedaldi & Zisserman, *Deep Inside Convolutional Networks*, 2014",
        "https://arxiv.org/abs/1312.6034"),
    "GradientInput": (
        "The gradient times the input.",
        "One forward and one backward pass per input.",
        "Shrikumar et al., *Not Just a Black Box: Learning Important Features Through "
        "Propagating Activation Differences*, 2016",
        "https://arxiv.org/abs/1605.01713"),
    "IntegratedGradients": (
        "The integral of the gradients along the straight path from a baseline to the "
        "input, times the input's difference to the baseline.",
        "`steps` forward and backward passes per input (50 at the defaults).",
        "Sundararajan, Taly & Yan, *Axiomatic Attribution for Deep Networks*, ICML 2017",
        "https://arxiv.org/abs/1703.01365"),
    "SmoothGrad": (
        "The mean gradient over noisy copies of the input.",
        "`nb_samples` forward and backward passes per input (50 at the defaults).",
        "Smilkov et al., *SmoothGrad: removing noise by adding noise*, 2017",
        "https://arxiv.org/abs/1706.03825"),
    "SquareGrad": (
        "The mean squared gradient over noisy copies of the input.",
        "`nb_samples` forward and backward passes per input (50 at the defaults).",
        "Hooker et al., *A Benchmark for Interpretability Methods in Deep Neural "
        "Networks*, NeurIPS 2019",
        "https://arxiv.org/abs/1806.10758"),
    "VarGrad": (
        "The variance of the gradient over noisy copies of the input.",
        "`nb_samples` forward and backward passes per input (50 at the defaults).",
        "Adebayo et al., *Sanity Checks for Saliency Maps*, NeurIPS 2018",
        "https://arxiv.org/abs/1810.03292"),
    "GuidedBackprop": (
        "The gradient where each ReLU passes back only positive gradients, where it is "
        "active.",
        "One forward and one backward pass per input.",
        "Springenberg et al., *Striving for Simplicity: The All Convolutional Net*, 2015",
        "https://arxiv.org/abs/1412.6806"),
    "DeconvNet": (
        "The gradient where each ReLU passes back only positive gradients.",
        "One forward and one backward pass per input.",
        "Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, "
        "ECCV 2014",
        "https://arxiv.org/abs/1311.2901"),
    "GradCAM": (
        "The activations of a convolutional layer weighted by the spatial mean of their "
        "gradients, resized to the input.",
        "One forward and one backward pass per input.",
        "Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via "
        "Gradient-based Localization*, ICCV 2017",
        "https://arxiv.org/abs/1610.02391"),
    "GradCAMPP": (
        "Grad-CAM with weights built from second- and third-order terms of the gradient.",
        "One forward and one backward pass per input.",
        "Chattopadhyay et al., *Grad-CAM++: Improved Visual Explanations for Deep "
        "Convolutional Networks*, WACV 2018",
        "https://arxiv.org/abs/1710.11063"),
    "FEM": (
        "The feature maps of a convolutional layer thresholded at mean + k·std, weighted "
        "by their means (class-agnostic).",
        "One forward pass per input (no gradient).",
        "Fuad et al., *Features Understanding in 3D CNNs for Actions Recognition in "
        "Video*, IPTA 2020",
        "https://doi.org/10.1109/IPTA50016.2020.9286629"),
}


def public_names(package: str) -> list[str]:
    """The names in the ``__all__`` of ``package`` (a module or a package), read with
    ``ast`` from its source, without importing it; for a module without ``__all__``, the
    public classes and functions it defines."""
    relative = pathlib.Path(*package.split("."))
    path = ROOT / relative / "__init__.py"
    if not path.exists():
        path = ROOT / relative.with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            names = []
            for element in node.value.elts:
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    names.append(element.value)
            return names
    # no __all__ (sobol_tf.tasks): the public classes and functions it defines
    return [node.name for node in tree.body
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_")]


def api_pages() -> dict[str, list[tuple[str, str]]]:
    """``{package: [(name, page path), ...]}`` for every documented package."""
    pages = {}
    for package in PACKAGES:
        short = package.split(".", 1)[1]
        pages[package] = [(name, f"api/{short}/{name}.md") for name in public_names(package)]
    return pages


def api_page(package: str, name: str) -> str:
    """The markdown of the API page of ``package.name``."""
    lines = [f"# {name}", ""]
    if name in METHODS:
        what, cost, paper, link = METHODS[name]
        lines += [f"**What it computes.** {what}", "",
                  f"**Cost.** {cost}", "",
                  f"**Paper.** [{paper}]({link})", ""]
    lines += [f"::: {package}.{name}"]
    return "\n".join(lines) + "\n"


def api_index(pages: dict[str, list[tuple[str, str]]]) -> str:
    """The markdown of the API reference's first page: every page, by package."""
    lines = ["# API reference", "",
             "One page per public name of each package (its `__all__`), rendered from the "
             "docstrings: signature, arguments, returns, raises and example. Method pages "
             "start with what the method computes, its cost in forward passes and its "
             "paper.", ""]
    for package, entries in pages.items():
        lines += [f"## `{package}`", ""]
        for name, path in entries:
            link = path.split("/", 1)[1]
            lines.append(f"- [`{name}`]({link})")
        lines.append("")
    return "\n".join(lines)


def tutorials() -> list[str]:
    """The notebooks of ``tutorials/``, sorted."""
    return sorted(p.name for p in (ROOT / "tutorials").glob("*.ipynb"))


def on_config(config, **kwargs):
    """Put the generated API and tutorial pages in the navigation."""
    pages = api_pages()
    api_nav = [{"Overview": "api/index.md"}]
    for package, entries in pages.items():
        api_nav.append({package: [{name: path} for name, path in entries]})
    notebook_nav = [{"Overview": "tutorials/index.md"}]
    notebook_nav += [f"tutorials/{name}" for name in tutorials()]  # titled by their first heading
    for entry in config["nav"]:
        if isinstance(entry, dict) and "API reference" in entry:
            entry["API reference"] = api_nav
        if isinstance(entry, dict) and "Tutorials" in entry:
            entry["Tutorials"] = notebook_nav
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which makes the notebooks pages
def on_files(files: "Files", config, **kwargs) -> "Files":
    """Add the API pages, the notebooks and the benchmark figures."""
    pages = api_pages()
    files.append(File.generated(config, "api/index.md", content=api_index(pages)))
    for package, entries in pages.items():
        for name, path in entries:
            files.append(File.generated(config, path, content=api_page(package, name)))
    use_directory_urls = config["use_directory_urls"]
    for name in tutorials():  # served from where they are: tutorials/ at the root
        files.append(File(f"tutorials/{name}", str(ROOT), config["site_dir"], use_directory_urls))
    for figure in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        files.append(File(f"benchmarks/results/{figure.name}", str(ROOT), config["site_dir"],
                          use_directory_urls))
    return files


def _help_texts() -> list[tuple[str, str]]:
    """``[(command, its --help), ...]`` for ``sobol-tf`` and each subcommand."""
    parser_module = _parser_module()
    description = _cli_description()
    parser = parser_module.build_parser(description, lambda args: 0, lambda args: 0)
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # the same line width on every machine
    try:
        texts = [("sobol-tf", parser.format_help())]
        for action in parser._actions:  # the subcommands' parsers
            if isinstance(action, argparse._SubParsersAction):
                for name, subparser in action.choices.items():
                    texts.append((f"sobol-tf {name}", subparser.format_help()))
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return texts


def _parser_module():
    """The module of ``build_parser``, loaded from its file alone: it imports nothing but
    argparse, where the ``sobol_tf.cli`` package around it imports numpy and TensorFlow,
    which the docs environment does not have. ``sobol_tf/cli/parser.py`` once the command
    line is a package, ``sobol_tf/_cli_parser.py`` before."""
    for relative in ("sobol_tf/cli/parser.py", "sobol_tf/_cli_parser.py"):
        path = ROOT / relative
        if path.exists():
            spec = importlib.util.spec_from_file_location("_sobol_tf_cli_parser", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError("no sobol_tf/cli/parser.py nor sobol_tf/_cli_parser.py")


def _cli_description() -> str:
    """The first line of the command line module's docstring, read without importing it
    (it imports numpy and TensorFlow)."""
    for path in (ROOT / "sobol_tf" / "cli" / "__init__.py", ROOT / "sobol_tf" / "cli.py"):
        if path.exists():
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            if docstring:
                return docstring.splitlines()[0]
    return "Explain a Keras model's predictions on image files."


_INCLUDE = re.compile(r"<!-- include (benchmarks/results/[\w.-]+\.md) -->")


def _include(match: re.Match) -> str:
    """A results file of ``benchmarks/results/``, its headings two levels down."""
    text = (ROOT / match.group(1)).read_text(encoding="utf-8")
    return re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", text, flags=re.M)


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    """Replace ``<!-- include benchmarks/results/NAME.md -->`` by that file (the tables
    as the benchmarks wrote them) and ``<!-- sobol-tf help -->`` by the generated
    ``--help`` texts."""
    markdown = _INCLUDE.sub(_include, markdown)
    marker = "<!-- sobol-tf help -->"
    if marker not in markdown:
        return markdown
    blocks = []
    for command, text in _help_texts():
        blocks.append(f"### `{command} --help`\n\n```text\n{text.rstrip()}\n```\n")
    return markdown.replace(marker, "\n".join(blocks))


_REMOTE_IMAGE = re.compile(r"<img\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>")
_ALT = re.compile(r"\balt=\"([^\"]*)\"")


def on_post_page(output: str, page, config, **kwargs) -> str:
    """Load nothing from other hosts: an image from another host (the notebooks' "Open In
    Colab" badge) becomes its alt text; the link around it stays."""
    def alt_text(match: re.Match) -> str:
        alt = _ALT.search(match.group(0))
        return alt.group(1) if alt else ""
    return _REMOTE_IMAGE.sub(alt_text, output)
