// The chat page: one WebSocket to /ws/ (authenticated by the Django session), the
// protocol of docs/protocol.md, and a DOM that only ever shows text as text.
//
// ts values are Unix nanoseconds, beyond what a JS number holds exactly: frames are
// parsed so that every `ts`/`last_ts`/`since`/`before` becomes a BigInt, and sent back
// as raw JSON integers.
(() => {
  "use strict";

  const me = JSON.parse(document.getElementById("relay-user").textContent);
  const $ = (id) => document.getElementById(id);
  const els = {
    state: $("connection-state"), stateLabel: document.querySelector("#connection-state .label"),
    subscribeForm: $("subscribe-form"), channelInput: $("channel-input"),
    list: $("subscriptions"), noSubs: $("no-subscriptions"), title: $("current-channel"),
    scroller: $("scroller"), messages: $("messages"), loadOlder: $("load-older"),
    notice: $("notice"), composerForm: $("composer-form"), composer: $("composer"), send: $("send-button"),
  };
  const CHANNEL_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const BIG_KEYS = new Set(["ts", "last_ts", "since", "before"]);
  const PAGE = 50;

  // Per channel: messages by id, sorted list, the highest ts shown from the live
  // sequence (`since` when resuming), unread count, whether older history exists.
  const channels = new Map();
  let current = null;
  let ws = null;
  let live = false;
  let backoffMs = 500;
  let refs = 0;
  const pending = new Map();

  // ---- JSON with exact ns integers -------------------------------------------------
  function parseFrame(text) {
    return JSON.parse(text, function (key, value, context) {
      if (BIG_KEYS.has(key) && typeof value === "number") {
        return context && context.source ? BigInt(context.source) : BigInt(Math.round(value));
      }
      return value;
    });
  }

  function encodeFrame(frame) {
    const raw = typeof JSON.rawJSON === "function";
    const text = JSON.stringify(frame, (key, value) =>
      typeof value === "bigint" ? (raw ? JSON.rawJSON(value.toString()) : `__big__${value}__`) : value);
    return raw ? text : text.replace(/"__big__(\d+)__"/g, "$1");
  }

  // ---- connection ------------------------------------------------------------------
  function setState(state, label) {
    els.state.dataset.state = state;
    els.stateLabel.textContent = label;
    live = state === "live";
    const usable = live && current !== null;
    els.composer.disabled = !usable;
    els.send.disabled = !usable;
  }

  function connect() {
    setState("connecting", "Connecting…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/ws/`);
    ws.onmessage = (event) => handle(parseFrame(event.data));
    ws.onclose = (event) => {
      ws = null;
      for (const { reject } of pending.values()) reject(new Error("connection closed"));
      pending.clear();
      if (event.code === 4401) {
        setState("offline", "Signed out");
        location.assign("/login/");
        return;
      }
      if (event.code === 4429) showNotice("Too many open chat windows for your account; retrying later.");
      if (event.code === 4503) showNotice("The chat service is unavailable right now; retrying…");
      const delay = Math.min(backoffMs, 15000) * (0.75 + Math.random() / 2);
      backoffMs = Math.min(backoffMs * 2, 15000);
      setState("reconnecting", `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
      setTimeout(connect, delay);
    };
  }

  function request(frame) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new Error("not connected"));
        return;
      }
      const ref = ++refs;
      pending.set(ref, { resolve, reject });
      ws.send(encodeFrame({ ...frame, ref }));
    });
  }

  function handle(frame) {
    if (frame.ref !== undefined && pending.has(frame.ref)) {
      const { resolve, reject } = pending.get(frame.ref);
      pending.delete(frame.ref);
      if (frame.type === "error") reject(Object.assign(new Error(frame.message), { frame }));
      else resolve(frame);
      return;
    }
    switch (frame.type) {
      case "welcome":
        return onWelcome(frame);
      case "message":
        return addMessages(frame.message.channelid, [frame.message], { live: true });
      case "unsubscribed":
        if (frame.reason === "forbidden") showNotice(`You no longer have access to #${frame.channel}.`);
        return removeChannel(frame.channel);
      case "error":
        return showNotice(frame.message);
    }
  }

  async function onWelcome(frame) {
    backoffMs = 500;
    setState("live", "Live");
    hideNotice();
    for (const sub of frame.subscriptions) ensureChannel(sub.channel);
    const names = [...channels.keys()];
    if (current === null && names.length) select(names[0]);
    await Promise.all(names.map((name) => subscribe(name).catch(reportError)));
  }

  // ---- channels --------------------------------------------------------------------
  function ensureChannel(name) {
    let ch = channels.get(name);
    if (ch) return ch;
    ch = { name, byId: new Map(), list: [], lastTs: null, unread: 0, more: false, primed: false, li: null };
    channels.set(name, ch);
    const li = document.createElement("li");
    li.dataset.channel = name;
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "channel-name";
    pick.textContent = `#${name}`;
    pick.addEventListener("click", () => select(name));
    const badge = document.createElement("span");
    badge.className = "unread";
    badge.setAttribute("aria-label", "unread messages");
    badge.hidden = true;
    const leave = document.createElement("button");
    leave.type = "button";
    leave.className = "unsubscribe";
    leave.textContent = "×";
    leave.title = `Unsubscribe from #${name}`;
    leave.setAttribute("aria-label", `Unsubscribe from ${name}`);
    leave.addEventListener("click", () => unsubscribe(name));
    li.append(pick, badge, leave);
    els.list.append(li);
    ch.li = li;
    els.noSubs.hidden = true;
    return ch;
  }

  function removeChannel(name) {
    const ch = channels.get(name);
    if (!ch) return;
    ch.li.remove();
    channels.delete(name);
    els.noSubs.hidden = channels.size > 0;
    if (current === name) {
      current = null;
      const next = channels.keys().next();
      if (!next.done) select(next.value);
      else render();
    }
  }

  async function subscribe(name) {
    const ch = ensureChannel(name);
    const reply = await request({ type: "subscribe", channel: name, since: ch.lastTs ?? undefined, limit: 100 });
    addMessages(name, reply.messages, { live: true });
    if (reply.truncated) ch.more = true;
    if (!ch.primed) {
      // First view of this channel on this page: show some context before the unseen part.
      ch.primed = true;
      await loadOlder(name);
    }
  }

  async function unsubscribe(name) {
    try {
      await request({ type: "unsubscribe", channel: name });
      removeChannel(name);
    } catch (err) {
      reportError(err);
    }
  }

  async function loadOlder(name) {
    const ch = channels.get(name);
    if (!ch) return;
    const oldest = ch.list[0];
    const page = await request({ type: "history", channel: name, before: oldest ? oldest.ts : undefined, limit: PAGE });
    ch.more = page.more;
    addMessages(name, page.messages, { live: false, older: true });
  }

  function select(name) {
    current = name;
    const ch = channels.get(name);
    ch.unread = 0;
    render();
    setState(els.state.dataset.state, els.stateLabel.textContent);
  }

  // ---- messages --------------------------------------------------------------------
  function addMessages(name, messages, { live: fromLive, older = false }) {
    const ch = channels.get(name);
    if (!ch || !messages.length) {
      if (ch && name === current) renderOlderButton(ch);
      return;
    }
    let added = 0;
    for (const m of messages) {
      if (fromLive && (ch.lastTs === null || m.ts > ch.lastTs)) ch.lastTs = m.ts;
      if (ch.byId.has(m.id)) continue;
      ch.byId.set(m.id, m);
      ch.list.push(m);
      added += 1;
    }
    if (!added) return;
    ch.list.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    if (name !== current) {
      if (!older) ch.unread += added;
      renderBadge(ch);
      return;
    }
    const stick = older ? false : isNearBottom();
    const before = els.scroller.scrollHeight - els.scroller.scrollTop;
    render();
    if (older) els.scroller.scrollTop = els.scroller.scrollHeight - before;
    else if (stick) els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  function isNearBottom() {
    return els.scroller.scrollHeight - els.scroller.scrollTop - els.scroller.clientHeight < 80;
  }

  function render() {
    for (const ch of channels.values()) {
      ch.li.classList.toggle("current", ch.name === current);
      if (ch.name === current) ch.li.querySelector(".channel-name").setAttribute("aria-current", "true");
      else ch.li.querySelector(".channel-name").removeAttribute("aria-current");
      renderBadge(ch);
    }
    const ch = current === null ? null : channels.get(current);
    els.title.textContent = ch ? `#${ch.name}` : "Pick or subscribe to a channel";
    els.messages.replaceChildren(...(ch ? ch.list.map(renderMessage) : []));
    if (ch) renderOlderButton(ch);
    else els.loadOlder.hidden = true;
    els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  function renderOlderButton(ch) {
    els.loadOlder.hidden = !ch.more;
  }

  function renderBadge(ch) {
    const badge = ch.li.querySelector(".unread");
    badge.textContent = ch.unread ? String(ch.unread) : "";
    badge.hidden = !ch.unread;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  function renderMessage(m) {
    const li = document.createElement("li");
    li.className = m.userid === me.id ? "message mine" : "message";
    li.dataset.id = m.id;
    const meta = document.createElement("div");
    meta.className = "meta";
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = m.name || m.userid;
    const date = new Date(Number(BigInt(m.ts) / 1000000n));
    const time = document.createElement("time");
    time.dateTime = date.toISOString();
    time.title = fullFormat.format(date);
    time.textContent = timeFormat.format(date);
    meta.append(sender, time);
    const text = document.createElement("div");
    text.className = "text";
    text.dir = "auto";
    text.textContent = m.text;
    li.append(meta, text);
    return li;
  }

  // ---- notices ---------------------------------------------------------------------
  function showNotice(text) {
    els.notice.textContent = text;
    els.notice.hidden = false;
  }

  function hideNotice() {
    els.notice.hidden = true;
    els.notice.textContent = "";
  }

  function reportError(err) {
    const frame = err && err.frame;
    if (frame && frame.code === "rate_limited" && frame.retry_after !== undefined) {
      showNotice(`Slow down a little: try again in ${Math.ceil(frame.retry_after)} s.`);
    } else if (frame) {
      showNotice(frame.message);
    } else if (live) {
      showNotice("The connection dropped; reconnecting…");
    }
  }

  // ---- forms -----------------------------------------------------------------------
  els.subscribeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = els.channelInput.value.trim();
    if (!CHANNEL_RE.test(name)) {
      showNotice("A channel name is 1 to 64 letters, digits, '_' or '-'.");
      return;
    }
    hideNotice();
    const known = channels.has(name);
    ensureChannel(name);
    select(name);
    els.channelInput.value = "";
    try {
      if (!known) await subscribe(name);
      // Move on to writing, unless the person has already moved elsewhere meanwhile.
      if (document.activeElement === els.channelInput || document.activeElement === document.body) {
        els.composer.focus();
      }
    } catch (err) {
      if (!known) removeChannel(name);
      reportError(err);
    }
  });

  els.loadOlder.addEventListener("click", () => current && loadOlder(current).catch(reportError));

  // One client_id per composed text: a send repeated after `unavailable` (a backend
  // failing over) or a dropped connection is stored once by the relay.
  let draft = { text: null, channel: null, clientId: null };

  async function sendComposer() {
    const text = els.composer.value;
    if (!current || !text.trim()) return;
    const channel = current;
    if (draft.text !== text || draft.channel !== channel) draft = { text, channel, clientId: crypto.randomUUID() };
    const frame = { type: "publish", channel, text, client_id: draft.clientId };
    for (let attempt = 0, delay = 500; ; attempt += 1, delay = Math.min(delay * 2, 8000)) {
      try {
        const ack = await request(frame);
        if (els.composer.value === text) els.composer.value = "";
        draft = { text: null, channel: null, clientId: null };
        hideNotice();
        addMessages(channel, [ack.message], { live: false });
        return;
      } catch (err) {
        const code = err && err.frame && err.frame.code;
        if (code !== "unavailable" || attempt >= 4) return reportError(err);
        showNotice(`The chat service is busy; sending again in ${Math.ceil(delay / 1000)} s…`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  els.composerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sendComposer();
  });
  els.composer.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });

  render();
  connect();
})();
