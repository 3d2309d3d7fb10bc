"""A small document model and its two renderings: self-contained HTML and Markdown.

A report is a list of blocks (headings, paragraphs, tables, images, code, collapsible parts).
The HTML page embeds every image as a ``data:`` URI, so it is one file that can be mailed or
archived; the Markdown twin links the images, written beside it in ``<name>_files/``.  Both are
pure functions of the blocks: the same blocks give byte-identical files.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    """Plain text; `backticks` mark code, **double asterisks** strong text."""

    text: str
    css: str = ""


@dataclass
class BulletList:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Image:
    name: str  # file name in the Markdown twin's folder, e.g. "clv_gain_curves.png"
    data: bytes
    caption: str = ""


@dataclass
class Code:
    text: str
    language: str = ""


@dataclass
class Details:
    """Collapsed in HTML (click to open); a plain sub-section in Markdown."""

    summary: str
    blocks: list = field(default_factory=list)


Block = Heading | Paragraph | BulletList | Table | Image | Code | Details


def fmt(value) -> str:
    """A cell as text: whole numbers as integers, others to 3 decimals (1 from 10, none from
    1000, 2 significant digits below 0.01), missing values blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2g}"
    return str(value)


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [fmt(v.item() if hasattr(v, "item") else v) for v in row]
        for row in frame.itertuples(index=False)
    ]


def _numeric(frame: pd.DataFrame) -> list[bool]:
    return [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in frame.columns
    ]


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.8em; border-bottom: 3px solid #2b6cb0; padding-bottom: .3em; }
h2 { font-size: 1.4em; margin-top: 2em; border-bottom: 1px solid #cbd5e0; padding-bottom: .2em; }
h3 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .8em 0 1.4em; font-size: 13px; display: block;
        overflow-x: auto; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3em 0; }
th, td { border: 1px solid #d9dee5; padding: .3em .6em; white-space: nowrap; }
th { background: #edf2f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f7fafc; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #e2e8f0; }
figcaption { color: #4a5568; font-size: 13px; margin-top: .3em; }
pre { background: #f4f6f8; border: 1px solid #e2e8f0; padding: .8em; overflow-x: auto;
      font-size: 12.5px; }
code { background: #f4f6f8; padding: 0 .25em; border-radius: 3px; font-size: 90%; }
pre code { background: none; padding: 0; }
details { margin: .6em 0; } summary { cursor: pointer; font-weight: 600; }
p.note { background: #fffbea; border-left: 4px solid #d69e2e; padding: .5em .8em; }
p.finding { background: #ebf8ff; border-left: 4px solid #3182ce; padding: .5em .8em; }
"""


def _inline_html(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = re.sub(r"[^a-z0-9]+", "-", block.text.lower()).strip("-")
        return f'<h{block.level} id="{anchor}">{html.escape(block.text)}</h{block.level}>'
    if isinstance(block, Paragraph):
        css = f' class="{block.css}"' if block.css else ""
        return f"<p{css}>{_inline_html(block.text)}</p>"
    if isinstance(block, BulletList):
        items = "".join(f"<li>{_inline_html(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        numeric = _numeric(block.frame)
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.frame.columns)
        rows = "".join(
            "<tr>"
            + "".join(
                f'<td class="num">{html.escape(v)}</td>' if num else f"<td>{html.escape(v)}</td>"
                for v, num in zip(row, numeric, strict=True)
            )
            + "</tr>"
            for row in _cells(block.frame)
        )
        caption = f"<caption>{_inline_html(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.data).decode("ascii")
        caption = f"<figcaption>{_inline_html(block.caption)}</figcaption>" if block.caption else ""
        alt = html.escape(block.caption or block.name)
        return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{caption}</figure>'
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text)}</code></pre>"
    if isinstance(block, Details):
        inner = "\n".join(_html_block(b) for b in block.blocks)
        return f"<details><summary>{html.escape(block.summary)}</summary>\n{inner}\n</details>"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(title: str, blocks: list[Block]) -> str:
    """The whole page: one file, images embedded."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _md_text(text: str) -> str:
    """Text for Markdown: raw HTML neutralised (the twin is often rendered as HTML too)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_table(table: Table) -> str:
    frame = table.frame
    numeric = _numeric(frame)

    def cell(text: str) -> str:
        return _md_text(text).replace("|", "\\|").replace("\n", " ")

    lines = []
    if table.caption:
        lines += [f"*{_md_text(table.caption)}*", ""]
    lines.append("| " + " | ".join(cell(str(c)) for c in frame.columns) + " |")
    lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in _cells(frame)]
    return "\n".join(lines)


def _md_block(block: Block, images: dict[str, bytes], folder: str) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + _md_text(block.text)
    if isinstance(block, Paragraph):
        return f"> {_md_text(block.text)}" if block.css else _md_text(block.text)
    if isinstance(block, BulletList):
        return "\n".join(f"- {_md_text(item)}" for item in block.items)
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Image):
        images[block.name] = block.data
        caption = _md_text(block.caption)
        return f"![{caption or block.name}]({folder}/{block.name})" + (
            f"\n\n*{caption}*" if caption else ""
        )
    if isinstance(block, Code):
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", block.text)), default=0))
        return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"
    if isinstance(block, Details):
        inner = "\n\n".join(_md_block(b, images, folder) for b in block.blocks)
        return f"**{_md_text(block.summary)}**\n\n{inner}"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_markdown(blocks: list[Block], folder: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the images it links (``folder/<name>``), by name."""
    images: dict[str, bytes] = {}
    text = "\n\n".join(_md_block(b, images, folder) for b in blocks) + "\n"
    return text, images


def write(directory: Path, name: str, title: str, blocks: list[Block]) -> tuple[Path, Path]:
    """Write ``<name>.html`` and ``<name>.md`` (+ ``<name>_files/``) into ``directory``.

    Files are written under temporary names and renamed, so a failure never leaves a
    half-written report in place of a good one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    folder = f"{name}_files"
    markdown, images = render_markdown(blocks, folder)
    image_dir = directory / folder
    image_dir.mkdir(exist_ok=True)
    for stale in image_dir.glob("*.png"):
        if stale.name not in images:
            stale.unlink()
    outputs = {
        directory / f"{name}.html": render_html(title, blocks).encode("utf-8"),
        directory / f"{name}.md": markdown.encode("utf-8"),
        **{image_dir / n: data for n, data in images.items()},
    }
    for path, data in outputs.items():
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)
    return directory / f"{name}.html", directory / f"{name}.md"
