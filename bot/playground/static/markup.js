// Discord's message markup, as its client shows it: **bold**, *italic*, __underline__, ~~strike~~,
// `code`, ```blocks```, > quotes, # headings, -# subtext, lists, links, mentions and <t:UNIX:STYLE>
// timestamps in the reader's own time zone and language.
"use strict";

(function () {
  const escapeHtml = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  const locale = navigator.language || "en-US";
  const formats = {
    t: { hour: "numeric", minute: "2-digit" },
    T: { hour: "numeric", minute: "2-digit", second: "2-digit" },
    d: { year: "numeric", month: "2-digit", day: "2-digit" },
    D: { year: "numeric", month: "long", day: "numeric" },
    f: { year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" },
    F: { weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" },
  };

  // Discord's (moment.js's) thresholds: 45 s, 45 min, 22 h, 26 days, 11 months.
  function relative(unix, now) {
    const diff = unix - now;
    const abs = Math.abs(diff);
    const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "always" });
    const pick = (size, unit) => rtf.format(Math.round(diff / size) || Math.sign(diff) || 0, unit);
    if (abs < 45) return pick(1, "second");
    if (abs < 45 * 60) return pick(60, "minute");
    if (abs < 22 * 3600) return pick(3600, "hour");
    if (abs < 26 * 86400) return pick(86400, "day");
    if (abs < 320 * 86400) return pick(30 * 86400, "month");
    return pick(365 * 86400, "year");
  }

  // `now` is the playground's time (unix seconds): "in 3 days" counts from it, not from the wall clock.
  function timestamp(unix, style, now) {
    const when = new Date(unix * 1000);
    if (style === "R") return relative(unix, now);
    return new Intl.DateTimeFormat(locale, formats[style] || formats.f).format(when);
  }

  function timestampHtml(unix, style, now) {
    const full = new Intl.DateTimeFormat(locale, formats.F).format(new Date(unix * 1000));
    return `<span class="ts" data-unix="${unix}" data-style="${style}" title="${escapeHtml(full)}">${escapeHtml(
      timestamp(unix, style, now),
    )}</span>`;
  }

  // Inline markup on already-escaped text. `ctx` names members, roles and channels.
  function inline(escaped, ctx) {
    const codes = [];
    let text = escaped.replace(/`([^`\n]+)`/g, (_, code) => {
      codes.push(`<code>${code}</code>`);
      return `\u0000${codes.length - 1}\u0000`;
    });
    text = text
      .replace(/&lt;t:(-?\d+)(?::([tTdDfFR]))?&gt;/g, (_, unix, style) => timestampHtml(Number(unix), style || "f", ctx.now()))
      .replace(/&lt;@!?(\d+)&gt;/g, (_, id) => `<span class="mention">@${escapeHtml(ctx.memberName(id))}</span>`)
      .replace(/&lt;@&amp;(\d+)&gt;/g, (_, id) => {
        const role = ctx.role(id);
        const color = role && role.color ? `style="--role:#${role.color.toString(16).padStart(6, "0")}"` : "";
        return `<span class="mention role-mention" ${color}>@${escapeHtml(role ? role.name : "unknown-role")}</span>`;
      })
      .replace(/&lt;#(\d+)&gt;/g, (_, id) => `<span class="mention"># ${escapeHtml(ctx.channelName(id))}</span>`)
      .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noreferrer">$1</a>')
      .replace(/\*\*\*([^*\n]+?)\*\*\*/g, "<strong><em>$1</em></strong>")
      .replace(/\*\*([^\n]+?)\*\*/g, "<strong>$1</strong>")
      .replace(/__([^\n]+?)__/g, "<u>$1</u>")
      .replace(/(^|[^\w*])\*([^*\n]+?)\*(?!\w)/g, "$1<em>$2</em>")
      .replace(/(^|[^\w])_([^_\n]+?)_(?!\w)/g, "$1<em>$2</em>")
      .replace(/~~([^\n]+?)~~/g, "<s>$1</s>")
      .replace(/\|\|([^\n]+?)\|\|/g, '<span class="spoiler" onclick="this.classList.add(\'shown\')">$1</span>');
    return text.replace(/\u0000(\d+)\u0000/g, (_, i) => codes[Number(i)]);
  }

  // Blocks: code fences, quotes, headings, subtext and lists, line by line.
  function render(source, ctx) {
    if (!source) return "";
    const parts = String(source).split(/```/);
    let html = "";
    parts.forEach((part, index) => {
      if (index % 2 === 1) {
        const body = part.replace(/^[a-z0-9+-]*\n/i, "");
        html += `<pre><code>${escapeHtml(body.replace(/\n$/, ""))}</code></pre>`;
        return;
      }
      const lines = part.split("\n");
      let list = false;
      lines.forEach((line, i) => {
        const escaped = escapeHtml(line);
        let m;
        const last = i === lines.length - 1;
        if ((m = /^\s*[-*] (.*)$/.exec(escaped)) && !/^-# /.test(line)) {
          if (!list) html += "<ul>";
          list = true;
          html += `<li>${inline(m[1], ctx)}</li>`;
          return;
        }
        if (list) {
          html += "</ul>";
          list = false;
        }
        if ((m = /^(#{1,3}) (.*)$/.exec(escaped))) {
          html += `<h${m[1].length + 2} class="md-h">${inline(m[2], ctx)}</h${m[1].length + 2}>`;
        } else if ((m = /^-# (.*)$/.exec(escaped))) {
          html += `<div class="subtext">${inline(m[1], ctx)}</div>`;
        } else if ((m = /^&gt; ?(.*)$/.exec(escaped))) {
          html += `<blockquote>${inline(m[1], ctx)}</blockquote>`;
        } else {
          html += inline(escaped, ctx) + (last ? "" : "<br>");
        }
      });
      if (list) html += "</ul>";
    });
    return html;
  }

  // Re-render every relative timestamp inside `root` against the playground's time.
  function refresh(root, now) {
    root.querySelectorAll(".ts").forEach((node) => {
      node.textContent = timestamp(Number(node.dataset.unix), node.dataset.style, now);
    });
  }

  window.Markup = { render, escapeHtml, timestamp, refresh, locale };
})();
