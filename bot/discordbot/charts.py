"""The /credits report chart: 12 weeks of granted, spent and expired credit as a PNG (Pillow)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from bot.domain.models import WeekFigures
from bot.domain.timeparse import from_unix

WIDTH, HEIGHT = 900, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 50, 60
SERIES = (("granted", (46, 204, 113)), ("spent", (52, 152, 219)), ("expired", (230, 126, 34)))
BACKGROUND = (47, 49, 54)
TEXT = (220, 221, 222)
GRID = (79, 84, 92)


def weekly_chart_png(weeks: Sequence[WeekFigures], unit: str) -> bytes:
    """Grouped bars per week. Pure CPU work: call it off the event loop (asyncio.to_thread)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    peak = max([1] + [max(w.granted, w.spent, w.expired) for w in weeks])
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    draw.text((MARGIN_LEFT, 15), f"Last {len(weeks)} weeks ({unit}, minor units)", fill=TEXT, font=font)
    for step in range(5):
        y = MARGIN_TOP + plot_h - plot_h * step / 4
        draw.line([(MARGIN_LEFT, y), (WIDTH - MARGIN_RIGHT, y)], fill=GRID)
        draw.text((5, y - 6), f"{peak * step // 4:,}", fill=TEXT, font=font)
    slot = plot_w / max(len(weeks), 1)
    bar = slot * 0.8 / len(SERIES)
    for index, week in enumerate(weeks):
        x0 = MARGIN_LEFT + index * slot + slot * 0.1
        for offset, (name, colour) in enumerate(SERIES):
            value = getattr(week, name)
            height = plot_h * value / peak
            left = x0 + offset * bar
            draw.rectangle([left, MARGIN_TOP + plot_h - height, left + bar - 2, MARGIN_TOP + plot_h], fill=colour)
        label = from_unix(week.week_start).strftime("%d %b")
        draw.text((x0, HEIGHT - MARGIN_BOTTOM + 8), label, fill=TEXT, font=font)
    for offset, (name, colour) in enumerate(SERIES):
        x = MARGIN_LEFT + offset * 120
        draw.rectangle([x, HEIGHT - 22, x + 12, HEIGHT - 10], fill=colour)
        draw.text((x + 18, HEIGHT - 24), name, fill=TEXT, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
