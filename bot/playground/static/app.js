// The playground's page: a small Discord client for one server, talking to /api (see web.py).
// It renders what the bot sent and asks the fake Discord what Discord's client would allow; the
// bot's rules and Discord's live on the server side, never here.
"use strict";

(function () {
  const { render, escapeHtml, refresh, locale } = window.Markup;
  const $ = (id) => document.getElementById(id);
  const OPTION = { SUB: 1, GROUP: 2, STRING: 3, INTEGER: 4, BOOLEAN: 5, USER: 6, CHANNEL: 7, ROLE: 8, MENTIONABLE: 9, NUMBER: 10, ATTACHMENT: 11 };
  const EYE = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M12 5C5.6 5 2 12 2 12s3.6 7 10 7 10-7 10-7-3.6-7-10-7Zm0 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8Zm0-2a2 2 0 1 0 0-4 2 2 0 0 0 0 4Z"/></svg>';
  const CROWN = '<svg class="icon crown" viewBox="0 0 24 24" aria-label="Server owner"><path fill="#f0b232" d="M3 7l4.5 4L12 4l4.5 7L21 7l-2 11H5L3 7Z"/></svg>';
  const FILE = '<svg class="file-icon" viewBox="0 0 24 30" aria-hidden="true"><path fill="#5865f2" d="M2 0h14l8 8v20a2 2 0 0 1-2 2H2a2 2 0 0 1-2-2V2a2 2 0 0 1 2-2Z"/><path fill="#c9cdfb" d="M16 0v6a2 2 0 0 0 2 2h6Z"/><path fill="#fff" d="M5 14h14v2H5zm0 4h14v2H5zm0 4h9v2H5z"/></svg>';
  const DOWNLOAD = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M11 3h2v10.6l3.3-3.3 1.4 1.4L12 17.4l-5.7-5.7 1.4-1.4 3.3 3.3V3ZM4 19h16v2H4z"/></svg>';

  const app = {
    server: null, // {guild, bot, members, roles, channels}
    me: null, // the member acted as
    view: { kind: "channel", id: null }, // or {kind: "dm"}
    messages: new Map(), // id -> message view (web.py feed)
    local: [], // the page's own notices: {id, channel, dm_user_id, user_id, at, content}
    clock: { now: Date.now() / 1000, receivedAt: Date.now() },
    commands: [], // flattened: {path, description, options, top}
    lastRead: {}, // `${member}:${channel}` -> message id
    form: null, // the command being filled in
    picker: { entries: [], index: 0 },
    dismissed: new Set(), // ephemeral messages this page was asked to hide
  };
  window.playground = app; // for a curious developer's console

  // ------------------------------------------------------------------ time
  const now = () => app.clock.now + (Date.now() - app.clock.receivedAt) / 1000;
  const dayKey = (unix) => new Date(unix * 1000).toDateString();
  function messageTime(unix) {
    const time = new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit" }).format(new Date(unix * 1000));
    const today = now();
    if (dayKey(unix) === dayKey(today)) return `Today at ${time}`;
    if (dayKey(unix) === dayKey(today - 86400)) return `Yesterday at ${time}`;
    return `${new Intl.DateTimeFormat(locale, { year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(unix * 1000))} ${time}`;
  }
  function paintClock() {
    $("clock-now").textContent = new Intl.DateTimeFormat(locale, {
      weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
    }).format(new Date(now() * 1000));
  }

  // ------------------------------------------------------------------ names
  const member = (id) => app.server && app.server.members.find((m) => m.id === String(id));
  const role = (id) => app.server && app.server.roles.find((r) => r.id === String(id));
  const channel = (id) => app.server && app.server.channels.find((c) => c.id === String(id));
  const hex = (color) => "#" + Number(color || 0).toString(16).padStart(6, "0");
  function memberColor(m) {
    const top = (m.roles || []).map(role).find((r) => r && r.color);
    return top ? hex(top.color) : null;
  }
  const ctx = {
    now,
    memberName: (id) => (String(id) === app.server?.bot.id ? app.server.bot.name : member(id)?.name || "unknown-user"),
    role,
    channelName: (id) => channel(id)?.name || "unknown-channel",
  };
  const palette = ["#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#747f8d"];
  function avatar(id, name, extra = "") {
    const color = id === app.server?.bot.id ? "#5865f2" : palette[Number(BigInt(id) % 6n)];
    const initials = id === app.server?.bot.id ? "PB" : (name || "?").slice(0, 1).toUpperCase();
    return `<span class="avatar ${extra}" style="background:${color}">${escapeHtml(initials)}</span>`;
  }

  // ------------------------------------------------------------------ API
  async function api(path, body) {
    const response = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.error || `${response.status}`);
      error.refusedByDiscord = data.refused_by === "discord";
      throw error;
    }
    return data;
  }
  const where = () => (app.view.kind === "dm" ? "dm" : app.view.id);

  function toast(text, kind = "") {
    const node = $("toast");
    node.textContent = text;
    node.className = `toast ${kind}`;
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (node.hidden = true), 5000);
  }

  function notice(content) {
    // Discord's own voice in the channel, shown only to this member (like "The application did not respond").
    app.local.push({
      id: `local-${Date.now()}-${Math.random()}`, local: true, channel_id: app.view.kind === "dm" ? null : app.view.id,
      dm_user_id: app.view.kind === "dm" ? app.me : null, user_id: app.me, at: now(), content,
    });
    renderMessages(true);
  }

  // ------------------------------------------------------------------ live updates
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`);
    const banner = $("banner");
    ws.onmessage = (event) => {
      const data = JSON.parse(event.data);
      banner.hidden = true;
      if (data.type === "hello") {
        setServer(data.state);
        app.messages = new Map(data.messages.map((m) => [m.id, m]));
        renderAll();
      } else if (data.type === "message") {
        const m = data.message;
        if (data.event === "delete") app.messages.delete(m.id);
        else app.messages.set(m.id, m);
        renderMessages(false);
        renderChannels();
      } else if (data.type === "clock") {
        setClock(data.clock);
        renderMessages(false);
      } else if (data.type === "state") {
        setServer(data.state);
        renderChannels();
        renderMembers();
        renderMessages(false);
      }
    };
    ws.onclose = () => {
      banner.textContent = "The playground stopped or restarts: reconnecting…";
      banner.hidden = false;
      setTimeout(connect, 1000);
    };
  }

  function setClock(clock) {
    app.clock = { now: clock.now, receivedAt: Date.now() };
    paintClock();
  }

  function setServer(state) {
    const first = !app.server;
    app.server = state;
    setClock(state.clock);
    $("guild-name").textContent = state.guild.name;
    if (first) {
      const saved = localStorage.getItem("playground-member");
      app.me = state.members.some((m) => m.id === saved) ? saved : state.members[0].id;
      app.view = { kind: "channel", id: state.channels[0].id };
      loadCommands();
    }
    const select = $("act-as");
    select.innerHTML = state.members
      .map((m) => `<option value="${m.id}" ${m.id === app.me ? "selected" : ""}>${escapeHtml(m.name)}</option>`)
      .join("");
  }

  // ------------------------------------------------------------------ sidebars
  function visible(m) {
    if (app.dismissed.has(m.id)) return false;
    if (app.view.kind === "dm") return m.dm_user_id === app.me;
    if (m.dm_user_id || m.channel_id !== app.view.id) return false;
    return !m.ephemeral || (m.interaction && m.interaction.user_id === app.me) || (m.local && m.user_id === app.me);
  }
  function unread(channelId, dm) {
    const key = `${app.me}:${dm ? "dm" : channelId}`;
    const seen = BigInt(app.lastRead[key] || "0");
    let count = 0;
    for (const m of app.messages.values()) {
      const mine = dm ? m.dm_user_id === app.me : !m.dm_user_id && m.channel_id === channelId && (!m.ephemeral || m.interaction?.user_id === app.me);
      if (mine && BigInt(m.id) > seen) count += 1;
    }
    return count;
  }
  function markRead() {
    let newest = "0";
    for (const m of app.messages.values()) if (visible(m) && BigInt(m.id) > BigInt(newest)) newest = m.id;
    app.lastRead[`${app.me}:${app.view.kind === "dm" ? "dm" : app.view.id}`] = newest;
  }

  function renderChannels() {
    if (!app.server) return;
    markRead();
    $("channels").innerHTML = app.server.channels
      .map((c) => {
        const count = app.view.kind === "channel" && app.view.id === c.id ? 0 : unread(c.id, false);
        return `<li><button class="channel ${app.view.kind === "channel" && app.view.id === c.id ? "active" : ""} ${count ? "unread" : ""}"
          data-channel="${c.id}" data-testid="channel-${escapeHtml(c.name)}"><span class="hash">#</span>${escapeHtml(c.name)}</button></li>`;
      })
      .join("");
    const dmCount = app.view.kind === "dm" ? 0 : unread(null, true);
    $("dms").innerHTML = `<li><button class="channel dm ${app.view.kind === "dm" ? "active" : ""} ${dmCount ? "unread" : ""}" data-dm="1" data-testid="channel-dm">
      ${avatar(app.server.bot.id, app.server.bot.name, "small")}<span>${escapeHtml(app.server.bot.name)}</span>
      ${dmCount ? `<i class="count" data-testid="dm-badge">${dmCount}</i>` : ""}</button></li>`;
    const badge = $("home-badge");
    badge.hidden = !dmCount;
    badge.textContent = dmCount;
    const me = member(app.me);
    $("me-avatar").outerHTML = `<span id="me-avatar">${avatar(me.id, me.name)}</span>`;
  }

  function renderMembers() {
    if (!app.server) return;
    const groups = new Map();
    for (const m of app.server.members) {
      const top = (m.roles || []).map(role).find(Boolean);
      const label = top ? top.name : "Members";
      if (!groups.has(label)) groups.set(label, []);
      groups.get(label).push(m);
    }
    const order = [...app.server.roles.map((r) => r.name), "Members"];
    let html = "";
    for (const label of order) {
      const people = groups.get(label);
      if (!people) continue;
      html += `<div class="group-label">${escapeHtml(label)} — ${people.length}</div>`;
      html += people
        .map((m) => {
          const color = memberColor(m);
          return `<button class="member ${m.id === app.me ? "me" : ""}" data-member="${m.id}" title="Act as ${escapeHtml(m.name)}" data-testid="member-${escapeHtml(m.username)}">
            ${avatar(m.id, m.name)}<span class="member-name" ${color ? `style="color:${color}"` : ""}>${escapeHtml(m.name)}</span>
            ${m.owner ? CROWN : ""}</button>`;
        })
        .join("");
    }
    html += `<div class="group-label">Apps — 1</div><div class="member">${avatar(app.server.bot.id, app.server.bot.name)}
      <span class="member-name">${escapeHtml(app.server.bot.name)}</span><span class="app-tag">APP</span></div>`;
    $("member-list").innerHTML = html;
  }

  function renderHeader() {
    if (app.view.kind === "dm") {
      $("chat-title").innerHTML = `${avatar(app.server.bot.id, app.server.bot.name, "small")} ${escapeHtml(app.server.bot.name)}`;
      $("chat-topic").textContent = `${member(app.me).name}'s direct messages with the bot`;
      $("composer-input").placeholder = `Message @${app.server.bot.name}`;
    } else {
      const c = channel(app.view.id);
      $("chat-title").innerHTML = `<span class="hash">#</span> ${escapeHtml(c.name)}`;
      $("chat-topic").textContent = c.topic || "";
      $("composer-input").placeholder = `Message #${c.name} — type / for commands`;
    }
  }

  // ------------------------------------------------------------------ messages
  function attachmentUsedByEmbed(m, a) {
    return m.embeds.some((e) => [e.image, e.thumbnail].some((i) => i && i.url === `attachment://${a.filename}`));
  }
  function embedMedia(m, url) {
    if (!url) return null;
    if (url.startsWith("attachment://")) {
      const a = m.attachments.find((x) => x.filename === url.slice("attachment://".length));
      return a ? a.url : null;
    }
    return null; // the page loads nothing from the internet
  }

  function renderEmbed(m, e) {
    const color = e.color !== undefined && e.color !== null ? hex(e.color) : "#1e1f22";
    let html = `<div class="embed" style="border-left-color:${color}" data-testid="embed"><div class="embed-grid">`;
    if (e.author && e.author.name) html += `<div class="embed-author">${escapeHtml(e.author.name)}</div>`;
    if (e.title) html += `<div class="embed-title">${render(e.title, ctx)}</div>`;
    if (e.description) html += `<div class="embed-description">${render(e.description, ctx)}</div>`;
    if (e.fields && e.fields.length) {
      html += `<div class="embed-fields">`;
      let run = 0;
      for (const f of e.fields) {
        const inline = f.inline && run < 3;
        run = inline ? run + 1 : 0;
        html += `<div class="embed-field ${f.inline ? "inline" : ""}"><div class="field-name">${render(f.name, ctx)}</div>
          <div class="field-value">${render(f.value, ctx)}</div></div>`;
      }
      html += `</div>`;
    }
    const image = embedMedia(m, e.image && e.image.url);
    if (image) html += `<img class="embed-image" src="${image}" alt="">`;
    const thumb = embedMedia(m, e.thumbnail && e.thumbnail.url);
    if (thumb) html += `<img class="embed-thumb" src="${thumb}" alt="">`;
    if ((e.footer && e.footer.text) || e.timestamp) {
      const when = e.timestamp ? messageTime(Date.parse(e.timestamp) / 1000) : "";
      html += `<div class="embed-footer">${escapeHtml(e.footer ? e.footer.text : "")}${e.footer && when ? " • " : ""}${when}</div>`;
    }
    return html + `</div></div>`;
  }

  const BUTTON_STYLES = { 1: "primary", 2: "secondary", 3: "success", 4: "danger", 5: "link", 6: "premium" };
  function renderComponents(m) {
    let html = "";
    for (const row of m.components) {
      if (row.type !== 1) continue;
      html += `<div class="action-row">`;
      for (const c of row.components || []) {
        if (c.type === 2) {
          const emoji = c.emoji && c.emoji.name ? `<span class="emoji">${escapeHtml(c.emoji.name)}</span>` : "";
          if (c.style === 5) {
            html += `<a class="button link" href="${escapeHtml(c.url)}" target="_blank" rel="noreferrer">${emoji}${escapeHtml(c.label || "")} ↗</a>`;
          } else {
            html += `<button class="button ${BUTTON_STYLES[c.style] || "secondary"}" ${c.disabled ? "disabled" : ""}
              data-message="${m.id}" data-custom-id="${escapeHtml(c.custom_id)}">${emoji}${escapeHtml(c.label || "")}</button>`;
          }
        } else if ([3, 5, 6, 7, 8].includes(c.type)) {
          const options = (c.options || []).map((o) => `<option value="${escapeHtml(o.value)}">${escapeHtml(o.label)}</option>`).join("");
          html += `<select class="select" ${c.disabled ? "disabled" : ""} data-message="${m.id}" data-custom-id="${escapeHtml(c.custom_id)}">
            <option value="">${escapeHtml(c.placeholder || "Make a selection")}</option>${options}</select>`;
        }
      }
      html += `</div>`;
    }
    return html;
  }

  function size(bytes) {
    return bytes < 1024 ? `${bytes} bytes` : bytes < 1048576 ? `${(bytes / 1024).toFixed(2)} KB` : `${(bytes / 1048576).toFixed(2)} MB`;
  }
  function renderAttachments(m) {
    return m.attachments
      .filter((a) => !attachmentUsedByEmbed(m, a))
      .map((a) => {
        if (/^image\//.test(a.content_type) || /\.(png|jpe?g|gif|webp)$/i.test(a.filename)) {
          return `<a class="image-attachment" href="${a.url}" target="_blank"><img src="${a.url}" alt="${escapeHtml(a.filename)}" data-testid="image-attachment"></a>`;
        }
        return `<div class="file" data-testid="file-attachment">${FILE}<div><a href="${a.url}" download="${escapeHtml(a.filename)}">${escapeHtml(a.filename)}</a>
          <div class="file-size">${size(a.size)}</div></div><a class="file-download" href="${a.url}" download="${escapeHtml(a.filename)}" title="Download">${DOWNLOAD}</a></div>`;
      })
      .join("");
  }

  function renderMessage(m, continued) {
    const bot = app.server.bot;
    if (m.local) {
      return `<article class="message ephemeral local" data-testid="message"><div class="gutter">${avatar(bot.id, "Discord", "clyde")}</div>
        <div class="body"><div class="head"><span class="author">Discord</span><span class="app-tag">SYSTEM</span><time>${messageTime(m.at)}</time></div>
        <div class="content">${escapeHtml(m.content)}</div>
        <div class="only-you">${EYE} Only you can see this</div></div></article>`;
    }
    const by = m.interaction && member(m.interaction.user_id);
    const reply = m.interaction && m.interaction.command && by
      ? `<div class="used">${avatar(by.id, by.name, "tiny")}<span class="used-name" ${memberColor(by) ? `style="color:${memberColor(by)}"` : ""}>${escapeHtml(by.name)}</span> used <span class="used-command">/${escapeHtml(m.interaction.command)}</span></div>`
      : "";
    const head = continued && !reply
      ? ""
      : `<div class="head"><span class="author">${escapeHtml(bot.name)}</span><span class="app-tag">APP</span><time>${messageTime(m.at)}</time></div>`;
    let body = "";
    if (m.loading) {
      body = `<div class="thinking">${escapeHtml(bot.name)} is thinking<span class="dots"><i>.</i><i>.</i><i>.</i></span></div>`;
    } else {
      body = `<div class="content">${render(m.content, ctx)}${m.edited && m.content ? '<span class="edited"> (edited)</span>' : ""}</div>`;
      body += m.embeds.map((e) => renderEmbed(m, e)).join("");
      body += renderAttachments(m);
      body += renderComponents(m);
    }
    const only = m.ephemeral ? `<div class="only-you" data-testid="only-you">${EYE} Only you can see this · <button type="button" class="dismiss" data-dismiss="${m.id}">Dismiss message</button></div>` : "";
    return `<article class="message ${m.ephemeral ? "ephemeral" : ""} ${head ? "" : "continued"}" data-id="${m.id}" data-testid="message">
      ${reply}<div class="row"><div class="gutter">${head ? avatar(bot.id, bot.name) : ""}</div><div class="body">${head}${body}${only}</div></div></article>`;
  }

  function renderMessages(forceBottom) {
    if (!app.server) return;
    const box = $("messages");
    const atBottom = forceBottom || box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const shown = [...app.messages.values(), ...app.local].filter(visible).sort((a, b) => a.at - b.at);
    let html = "";
    if (app.view.kind === "dm") {
      html += `<div class="channel-start">${avatar(app.server.bot.id, app.server.bot.name, "big")}<h1>${escapeHtml(app.server.bot.name)}</h1>
        <p>This is the beginning of ${escapeHtml(member(app.me).name)}'s direct message history with <strong>${escapeHtml(app.server.bot.name)}</strong>. Reminders before credit expires, and news about orders, arrive here.</p></div>`;
    } else {
      const c = channel(app.view.id);
      html += `<div class="channel-start"><div class="big-hash">#</div><h1>Welcome to #${escapeHtml(c.name)}!</h1><p>${escapeHtml(c.topic || "")}</p>
        ${c === app.server.channels[0] ? `<p class="tip">This is a playground: the real Promo Balance bot runs on your computer against a Discord emulator. Pick who you are at the bottom left, type <kbd>/</kbd> to see that member's commands, and move the clock at the top right to watch reminders and expiry happen.</p>` : ""}</div>`;
    }
    let previous = null;
    for (const m of shown) {
      if (!previous || dayKey(previous.at) !== dayKey(m.at)) {
        html += `<div class="day"><span>${new Intl.DateTimeFormat(locale, { year: "numeric", month: "long", day: "numeric" }).format(new Date(m.at * 1000))}</span></div>`;
      }
      const continued = previous && !previous.local && !m.local && !m.interaction && m.at - previous.at < 420 && dayKey(previous.at) === dayKey(m.at);
      html += renderMessage(m, continued);
      previous = m;
    }
    box.innerHTML = html;
    if (atBottom) {
      box.scrollTop = box.scrollHeight;
      // an image (the report chart) grows the list once it loads: stay at the bottom
      box.querySelectorAll("img").forEach((img) => img.addEventListener("load", () => (box.scrollTop = box.scrollHeight), { once: true }));
    }
    markRead();
  }

  function renderAll() {
    renderHeader();
    renderChannels();
    renderMembers();
    renderMessages(true);
  }

  // ------------------------------------------------------------------ commands
  function flatten(commands) {
    const out = [];
    for (const top of commands) {
      const walk = (node, path) => {
        const subs = (node.options || []).filter((o) => o.type === OPTION.SUB || o.type === OPTION.GROUP);
        if (!subs.length) {
          out.push({ path, description: node.description, options: node.options || [], top: top.name });
          return;
        }
        for (const sub of subs) walk(sub, `${path} ${sub.name}`);
      };
      walk(top, top.name);
    }
    return out;
  }

  async function loadCommands() {
    const asked = (loadCommands.seq = (loadCommands.seq || 0) + 1);
    let commands = [];
    try {
      commands = flatten((await api(`/api/commands?user=${app.me}&channel=${where()}`)).commands);
    } catch (error) {
      commands = [];
    }
    if (asked !== loadCommands.seq) return; // a newer member or channel asked since
    app.commands = commands;
    if (!app.form) composerChanged(); // what was typed meanwhile meets this member's commands
  }

  function composerChanged() {
    const text = $("composer-input").value;
    if (text.startsWith("/")) {
      const typed = text.slice(1);
      const exact = app.commands.find((c) => typed.trimEnd() === c.path && typed.endsWith(" "));
      if (exact) openForm(exact.path);
      else showPicker(typed);
    } else hidePicker();
    $("composer-hint").textContent = text && !text.startsWith("/") ? "The bot reads no chat messages: its commands start with /" : "";
  }

  function showPicker(query) {
    const needle = query.trim().toLowerCase();
    const entries = app.commands.filter((c) => !needle || c.path.startsWith(needle) || c.path.split(" ").some((w) => w.startsWith(needle)));
    app.picker = { entries, index: 0 };
    const picker = $("picker");
    if (!entries.length) {
      picker.innerHTML = `<div class="picker-empty">${app.commands.length ? "No command matches" : "No commands here: the bot's commands work in the server's channels."}</div>`;
      picker.hidden = false;
      return;
    }
    picker.innerHTML = `<div class="picker-head">${avatar(app.server.bot.id, app.server.bot.name, "tiny")} ${escapeHtml(app.server.bot.name)}</div>` +
      entries
        .map((c, i) => `<button type="button" class="picker-item ${i === 0 ? "active" : ""}" data-path="${escapeHtml(c.path)}" role="option" data-testid="pick-${escapeHtml(c.path.replace(/ /g, "-"))}">
          <span class="picker-name">/${escapeHtml(c.path)}</span> ${c.options.filter((o) => o.required).map((o) => `<span class="picker-opt">${escapeHtml(o.name)}</span>`).join(" ")}
          <span class="picker-desc">${escapeHtml(c.description || "")}</span></button>`)
        .join("");
    picker.hidden = false;
  }
  function hidePicker() {
    $("picker").hidden = true;
  }
  function movePicker(delta) {
    const items = $("picker").querySelectorAll(".picker-item");
    if (!items.length) return;
    app.picker.index = (app.picker.index + delta + items.length) % items.length;
    items.forEach((item, i) => item.classList.toggle("active", i === app.picker.index));
    items[app.picker.index].scrollIntoView({ block: "nearest" });
  }

  // The command being filled in: one field per option, as Discord's client shows them.
  function openForm(path) {
    const command = app.commands.find((c) => c.path === path);
    if (!command) return;
    hidePicker();
    const options = [...command.options].sort((a, b) => Number(!!b.required) - Number(!!a.required));
    app.form = { command, values: {}, labels: {} };
    const fields = options.map((o) => `<div class="option ${o.required ? "required" : "optional"}" data-option="${escapeHtml(o.name)}">
        <label for="opt-${escapeHtml(o.name)}"><span class="option-name">${escapeHtml(o.name)}</span>${o.required ? '<span class="req" title="required">*</span>' : ""}</label>
        ${optionInput(o)}
        <div class="option-desc">${escapeHtml(o.description || "")}</div>
        <div class="option-error" hidden>This field is required</div>
      </div>`).join("");
    const form = $("command-form");
    form.innerHTML = `<div class="form-head"><span class="form-chip">/${escapeHtml(command.path)}</span>
        <span class="form-desc">${escapeHtml(command.description || "")}</span>
        <button type="button" class="form-close" id="form-close" title="Cancel (Esc)">✕</button></div>
      <div class="options">${fields || '<div class="no-options">No options: press Send or Enter.</div>'}</div>
      <div class="form-actions"><span class="form-note">${options.some((o) => o.required) ? "<span class=\"req\">*</span> required" : ""}</span>
        <button type="submit" class="send" id="send" data-testid="send">Send</button></div>`;
    form.hidden = false;
    $("composer-row").hidden = true;
    const first = form.querySelector("input, select");
    if (first) first.focus();
    else $("send").focus();
    validate();
  }
  function closeForm() {
    app.form = null;
    $("command-form").hidden = true;
    $("command-form").innerHTML = "";
    $("composer-row").hidden = false;
    $("composer-input").value = "";
    $("composer-input").focus();
  }

  function optionInput(o) {
    const id = `opt-${escapeHtml(o.name)}`;
    const base = `id="${id}" data-name="${escapeHtml(o.name)}" data-type="${o.type}" data-testid="option-${escapeHtml(o.name)}"`;
    const select = (items) => `<select ${base}><option value=""></option>${items.map(([v, label]) => `<option value="${escapeHtml(v)}">${escapeHtml(label)}</option>`).join("")}</select>`;
    if (o.choices && o.choices.length) return select(o.choices.map((c) => [c.value, c.name]));
    switch (o.type) {
      case OPTION.BOOLEAN:
        return select([["true", "True"], ["false", "False"]]);
      case OPTION.USER:
        return select([...app.server.members.map((m) => [m.id, `${m.name} (@${m.username})`]), [app.server.bot.id, app.server.bot.name]]);
      case OPTION.ROLE:
        return select(app.server.roles.map((r) => [r.id, `@${r.name}`]));
      case OPTION.MENTIONABLE:
        return select([...app.server.members.map((m) => [m.id, `@${m.name}`]), ...app.server.roles.map((r) => [r.id, `@${r.name}`])]);
      case OPTION.CHANNEL:
        return select(app.server.channels.map((c) => [c.id, `#${c.name}`]));
      case OPTION.ATTACHMENT:
        return `<input type="file" ${base}>`;
      default: {
        const numeric = o.type === OPTION.INTEGER || o.type === OPTION.NUMBER;
        const limits = [
          o.max_length ? `maxlength="${o.max_length}"` : "",
          o.min_value !== undefined ? `min="${o.min_value}"` : "",
          o.max_value !== undefined ? `max="${o.max_value}"` : "",
        ].join(" ");
        const kind = numeric && !o.autocomplete ? `type="number" step="${o.type === OPTION.INTEGER ? 1 : "any"}"` : 'type="text"';
        const auto = o.autocomplete ? 'data-autocomplete="1" role="combobox"' : "";
        return `<div class="input-wrap"><input ${kind} ${base} ${limits} ${auto} placeholder="${escapeHtml(o.autocomplete ? "type to search" : "")}">
          ${o.autocomplete ? `<div class="choices" hidden data-testid="choices-${escapeHtml(o.name)}"></div>` : ""}</div>`;
      }
    }
  }

  function fieldValue(input) {
    const name = input.dataset.name;
    if (input.type === "file") return input.files && input.files.length ? input.files[0] : null;
    if (app.form.values[name] !== undefined && input.dataset.autocomplete) return app.form.values[name];
    return input.value.trim() === "" ? null : input.value;
  }

  function validate() {
    if (!app.form) return true;
    let ok = true;
    for (const o of app.form.command.options) {
      const input = document.getElementById(`opt-${o.name}`);
      if (o.required && (!input || fieldValue(input) === null)) ok = false;
    }
    $("send").disabled = !ok;
    return ok;
  }

  async function readFile(file) {
    const buffer = await file.arrayBuffer();
    let binary = "";
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { filename: file.name, data: btoa(binary), content_type: file.type || "application/octet-stream" };
  }

  async function collect(skipFiles = false, except = null) {
    const options = {};
    for (const input of $("command-form").querySelectorAll("[data-name]")) {
      const name = input.dataset.name;
      if (name === except) continue;
      const value = fieldValue(input);
      if (value === null) continue;
      const type = Number(input.dataset.type);
      if (value instanceof File) {
        if (!skipFiles) options[name] = await readFile(value);
      } else if (type === OPTION.BOOLEAN) {
        options[name] = value === "true";
      } else {
        options[name] = value;
      }
    }
    return options;
  }

  async function submitForm() {
    if (!app.form) return;
    if (!validate()) {
      for (const o of app.form.command.options) {
        const input = document.getElementById(`opt-${o.name}`);
        const box = input && input.closest(".option");
        if (box) box.querySelector(".option-error").hidden = !(o.required && fieldValue(input) === null);
      }
      return;
    }
    const command = app.form.command.path;
    const options = await collect();
    const send = $("send");
    send.disabled = true;
    send.textContent = "Sending…";
    try {
      const answer = await api("/api/invoke", { user: app.me, channel: where(), command, options });
      closeForm();
      handleAnswer(answer);
    } catch (error) {
      send.disabled = false;
      send.textContent = "Send";
      if (error.refusedByDiscord) toast(`Discord would not send this: ${error.message}`, "error");
      else toast(error.message, "error");
    }
  }

  function handleAnswer(answer) {
    if (answer.modal) openModal(answer);
    else if (!answer.responded) notice("The application did not respond");
  }

  // autocomplete: ask the bot, as Discord's client does while the member types
  async function suggest(input) {
    const name = input.dataset.name;
    const box = input.parentElement.querySelector(".choices");
    const asked = (suggest.seq = (suggest.seq || 0) + 1);
    let choices = [];
    try {
      const options = await collect(true, name);
      options[name] = input.value;
      const data = await api("/api/autocomplete", { user: app.me, channel: where(), command: app.form.command.path, options, focused: name });
      choices = data.choices;
    } catch (error) {
      choices = [];
    }
    if (asked !== suggest.seq || !app.form) return;
    box.innerHTML = choices.length
      ? choices.map((c) => `<button type="button" class="choice" data-value="${escapeHtml(c.value)}" data-label="${escapeHtml(c.name)}">${escapeHtml(c.name)}</button>`).join("")
      : `<div class="choice empty">No choices from the bot</div>`;
    box.hidden = false;
  }

  // ------------------------------------------------------------------ modals
  function modalInputs(components) {
    let html = "";
    for (const c of components) {
      if (c.type === 1) html += modalInputs(c.components || []);
      else if (c.type === 18) html += `<label class="modal-label">${escapeHtml(c.label || "")}</label>${c.description ? `<div class="option-desc">${escapeHtml(c.description)}</div>` : ""}${modalInputs([c.component])}`;
      else if (c.type === 4) {
        const attrs = `name="${escapeHtml(c.custom_id)}" ${c.required !== false ? "required" : ""} ${c.max_length ? `maxlength="${c.max_length}"` : ""} ${c.min_length ? `minlength="${c.min_length}"` : ""} placeholder="${escapeHtml(c.placeholder || "")}"`;
        if (c.label) html += `<label class="modal-label">${escapeHtml(c.label)}${c.required !== false ? '<span class="req">*</span>' : ""}</label>`;
        html += c.style === 2 ? `<textarea ${attrs}>${escapeHtml(c.value || "")}</textarea>` : `<input ${attrs} value="${escapeHtml(c.value || "")}">`;
      }
    }
    return html;
  }
  function openModal(answer) {
    const modal = answer.modal;
    const form = $("modal");
    form.innerHTML = `<header>${avatar(app.server.bot.id, app.server.bot.name, "tiny")} ${escapeHtml(app.server.bot.name)}<h2>${escapeHtml(modal.title)}</h2></header>
      <div class="modal-body">${modalInputs(modal.components)}</div>
      <footer><button type="button" class="button secondary" id="modal-cancel">Cancel</button><button type="submit" class="button primary">Submit</button></footer>`;
    form.dataset.interaction = answer.interaction;
    $("modal-back").hidden = false;
    const first = form.querySelector("input, textarea");
    if (first) first.focus();
  }

  // ------------------------------------------------------------------ events
  function switchTo(id) {
    app.me = id;
    localStorage.setItem("playground-member", id);
    if (app.form) closeForm();
    $("act-as").value = id;
    loadCommands();
    renderAll();
  }

  document.addEventListener("click", async (event) => {
    const target = event.target.closest("button, a");
    if (!target) {
      document.querySelectorAll(".choices").forEach((b) => (b.hidden = true));
      return;
    }
    if (target.dataset.dismiss) {
      app.dismissed.add(target.dataset.dismiss);
      renderMessages(false);
    } else if (target.dataset.channel) {
      app.view = { kind: "channel", id: target.dataset.channel };
      if (app.form) closeForm();
      await loadCommands();
      renderAll();
    } else if (target.dataset.dm || target.id === "home") {
      app.view = { kind: "dm" };
      if (app.form) closeForm();
      await loadCommands();
      renderAll();
    } else if (target.id === "server-icon") {
      app.view = { kind: "channel", id: app.server.channels[0].id };
      await loadCommands();
      renderAll();
    } else if (target.dataset.member) {
      switchTo(target.dataset.member);
    } else if (target.dataset.path) {
      openForm(target.dataset.path);
    } else if (target.id === "form-close") {
      closeForm();
    } else if (target.classList.contains("choice") && target.dataset.value !== undefined) {
      const input = target.closest(".input-wrap").querySelector("input");
      app.form.values[input.dataset.name] = target.dataset.value;
      input.value = target.dataset.label;
      target.parentElement.hidden = true;
      validate();
    } else if (target.dataset.customId && target.tagName === "BUTTON") {
      target.classList.add("busy");
      try {
        handleAnswer(await api("/api/click", { user: app.me, message: target.dataset.message, custom_id: target.dataset.customId }));
      } catch (error) {
        toast(error.refusedByDiscord ? `Discord would not send this: ${error.message}` : error.message, "error");
      } finally {
        target.classList.remove("busy");
      }
    } else if (target.dataset.step) {
      document.querySelectorAll(".clock button").forEach((b) => (b.disabled = true));
      try {
        const result = await api("/api/clock", { step: target.dataset.step });
        setClock(result);
        if (!result.moved) toast(result.why);
        else {
          const r = result.ran;
          const said = [
            r.reminded && `${r.reminded} reminder DM${r.reminded > 1 ? "s" : ""} sent`,
            r.expired && `${r.expired} credit lot${r.expired > 1 ? "s" : ""} expired`,
            r.recurring && `${r.recurring} recurring grant${r.recurring > 1 ? "s" : ""} ran`,
            r.delivered && `${r.delivered} deliver${r.delivered > 1 ? "ies" : "y"} done`,
          ].filter(Boolean);
          toast(`The clock moved on. ${said.length ? said.join(", ") + "." : "Nothing fell due."}`);
        }
        renderMessages(false);
      } catch (error) {
        toast(error.message, "error");
      } finally {
        document.querySelectorAll(".clock button").forEach((b) => (b.disabled = false));
      }
    } else if (target.id === "modal-cancel") {
      $("modal-back").hidden = true;
    }
  });

  document.addEventListener("change", async (event) => {
    const target = event.target;
    if (target.id === "act-as") switchTo(target.value);
    else if (target.classList.contains("select") && target.dataset.customId && target.value) {
      try {
        handleAnswer(await api("/api/click", { user: app.me, message: target.dataset.message, custom_id: target.dataset.customId, values: [target.value] }));
      } catch (error) {
        toast(error.message, "error");
      }
    } else if (app.form && target.dataset.name) {
      validate();
    }
  });

  document.addEventListener("input", (event) => {
    const target = event.target;
    if (target.id === "composer-input") {
      composerChanged();
    } else if (app.form && target.dataset.name) {
      if (target.dataset.autocomplete) {
        delete app.form.values[target.dataset.name];
        clearTimeout(suggest.timer);
        suggest.timer = setTimeout(() => suggest(target), 120);
      }
      const box = target.closest(".option");
      if (box) box.querySelector(".option-error").hidden = true;
      validate();
    }
  });

  document.addEventListener("focusin", (event) => {
    const target = event.target;
    if (app.form && target.dataset && target.dataset.autocomplete) suggest(target);
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.id === "composer-input" && !$("picker").hidden) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        movePicker(event.key === "ArrowDown" ? 1 : -1);
      } else if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        const entry = app.picker.entries[app.picker.index];
        if (entry) openForm(entry.path);
      } else if (event.key === "Escape") hidePicker();
    } else if (event.key === "Enter" && event.target.dataset && event.target.dataset.autocomplete && app.form && app.form.values[event.target.dataset.name] === undefined) {
      const first = event.target.parentElement.querySelector(".choice[data-value]");
      if (first) {
        event.preventDefault();
        first.click();
      }
    } else if (event.key === "Escape") {
      if (!$("modal-back").hidden) $("modal-back").hidden = true;
      else if (app.form) closeForm();
    }
  });

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if (app.form) submitForm();
  });

  $("modal").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = $("modal");
    const values = {};
    form.querySelectorAll("[name]").forEach((input) => (values[input.name] = input.value));
    try {
      const answer = await api("/api/modal", { user: app.me, interaction: form.dataset.interaction, values });
      $("modal-back").hidden = true;
      handleAnswer(answer);
    } catch (error) {
      toast(error.message, "error");
    }
  });

  setInterval(() => {
    paintClock();
    refresh($("messages"), now());
  }, 1000);

  connect();
})();
