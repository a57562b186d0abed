// The chat page: one WebSocket to /ws/ (authenticated by the Django session), the
// protocol of docs/protocol.md, and a DOM that only ever shows text as text.
//
// ts values are Unix nanoseconds, beyond what a JS number holds exactly: frames are
// parsed so that every `ts`/`last_ts`/`since`/`before` becomes a BigInt, and sent back
// as raw JSON integers.
//
// Reading: a message counts as read once its top has been on screen (its channel in
// view, the tab visible). Each channel's read position (the ts of the newest message
// read) is kept in localStorage per user, so unread counts survive a reload; the
// server's cursor only says what was sent to a connection, not what someone saw.
(() => {
  "use strict";

  const me = JSON.parse(document.getElementById("relay-user").textContent);
  const $ = (id) => document.getElementById(id);
  const els = {
    state: $("connection-state"), stateLabel: document.querySelector("#connection-state .label"),
    subscribeForm: $("subscribe-form"), channelInput: $("channel-input"),
    list: $("subscriptions"), noSubs: $("no-subscriptions"), title: $("current-channel"),
    scroller: $("scroller"), messages: $("messages"), loadOlder: $("load-older"),
    newMessages: $("new-messages"), newMessagesLabel: document.querySelector("#new-messages .label"),
    notice: $("notice"), composerForm: $("composer-form"), composer: $("composer"), send: $("send-button"),
  };
  const CHANNEL_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const BIG_KEYS = new Set(["ts", "last_ts", "since", "before"]);
  const PAGE = 50;
  const RESUME_LIMIT = 100;
  const UNREAD_LIMIT = 1000; // the most the relay sends in one reply
  const GAP_FILL = 500; // loaded into a new gap from each end, at most (see fillGap)
  const GAP_PAGE = 200; // loaded into a gap per click on its "Show missed messages"
  const NEAR_BOTTOM_PX = 80; // this close to the end, the pane follows new messages
  const SEEN_PX = 24; // a message is read once this much of its top has been on screen
  const CONTEXT_PX = 48; // shown above the first unread message when opening a channel
  const READ_KEY = `relay:read:${me.id}`;
  const pageTitle = document.title;

  // Per channel: messages by id, the list sorted by ts, the highest ts shown from the
  // live sequence (`since` when resuming), the read position (`readTs`), whether the
  // first reply left unread messages unloaded (`unreadBeyond`), whether older history
  // exists, the gaps (ranges of missed messages not loaded yet, between loaded ones),
  // whether the pane has been placed since the channel was selected.
  const channels = new Map();
  const nodes = new WeakMap(); // message -> its <li>, made once and kept
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
    for (const sub of frame.subscriptions) {
      const ch = ensureChannel(sub.channel);
      // No read position in this browser: fall back to the cursor, the last message
      // sent to one of the user's connections (0: none was ever sent, all are new).
      if (ch.readTs === null) setRead(ch, storedRead(sub.channel) ?? sub.last_ts ?? 0n);
    }
    const names = [...channels.keys()];
    if (current === null && names.length) select(names[0]);
    await Promise.all(names.map((name) => subscribe(name).catch(reportError)));
  }

  // ---- channels --------------------------------------------------------------------
  function ensureChannel(name) {
    let ch = channels.get(name);
    if (ch) return ch;
    ch = {
      name, byId: new Map(), list: [], lastTs: null, readTs: null, unreadBeyond: false,
      more: false, gaps: [], primed: false, positioned: false, li: null,
    };
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
    forgetRead(name);
    els.noSubs.hidden = channels.size > 0;
    if (current === name) {
      current = null;
      const next = channels.keys().next();
      if (!next.done) select(next.value);
      else render();
    } else {
      renderCounts();
    }
  }

  async function subscribe(name) {
    const ch = ensureChannel(name);
    // Resuming: after the last message shown. First time on this page: after the read
    // position, so the reply holds the unread messages (as many as one reply carries).
    const resuming = ch.lastTs !== null;
    const since = resuming ? ch.lastTs : ch.readTs ?? undefined;
    const limit = resuming || since === undefined ? RESUME_LIMIT : UNREAD_LIMIT;
    const reply = await request({ type: "subscribe", channel: name, since, limit });
    // Truncated: the reply is the newest `limit` after `since`. When messages older than
    // the reply are shown, the ones between `since` and the reply are a gap among them;
    // else they are simply older history ("Load older messages").
    const oldest = reply.messages.length ? reply.messages[0].ts : null;
    if (reply.truncated && since !== undefined && oldest !== null && ch.list.length && ch.list[0].ts < oldest) {
      ch.gaps.push(makeGap(name, since, oldest));
    } else if (reply.truncated) {
      ch.more = true;
      if (!resuming) ch.unreadBeyond = true;
    }
    addMessages(name, reply.messages, { live: true });
    for (const gap of ch.gaps.filter((g) => g.auto)) await fillGap(name, gap, GAP_FILL, { newest: true });
    if (!ch.primed) {
      // First view of this channel on this page: show some context before the unseen part.
      ch.primed = true;
      await loadOlder(name);
    }
    // Subscribed just now (not listed in `welcome`): what it shows at first is read.
    if (ch.readTs === null) setRead(ch, ch.list.length ? ch.list[ch.list.length - 1].ts : 0n);
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
    addMessages(name, page.messages, { live: false });
  }

  /**
   * A gap: messages with after < ts < before (ns, exclusive) that exist in the history
   * but are not loaded, shown as a "Show missed messages" button in their place.
   * `auto`: filled by itself (once) when subscribing; later only by clicks.
   */
  function makeGap(name, after, before) {
    const li = document.createElement("li");
    li.className = "gap";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "Show missed messages";
    li.append(button);
    const gap = { after, before, li, button, auto: true };
    button.addEventListener("click", () => fillGap(name, gap, GAP_PAGE).catch(reportError));
    return gap;
  }

  /**
   * Loads up to `limit` messages of a gap with `history` frames: the oldest after
   * `gap.after` (paging forward, so clicks read on from the last message shown before
   * it); with `newest`, when the gap holds more, also the newest `limit` before
   * `gap.before` (the part next to what the reader sees now). A gap bigger than that
   * stays, smaller, with its button.
   */
  async function fillGap(name, gap, limit, { newest = false } = {}) {
    if (gap.button.disabled) return;
    gap.button.disabled = true;
    try {
      const page = await request({ type: "history", channel: name, since: gap.after, before: gap.before, limit });
      const messages = page.messages;
      let open = page.more && messages.length > 0;
      if (open) gap.after = messages[messages.length - 1].ts;
      if (open && newest) {
        const tail = await request({ type: "history", channel: name, before: gap.before, limit });
        open = tail.more && tail.messages.length > 0 && tail.messages[0].ts > gap.after;
        if (open) gap.before = tail.messages[0].ts;
        messages.push(...tail.messages);
      }
      gap.auto = false;
      if (!open) closeGap(name, gap);
      addMessages(name, messages);
    } finally {
      gap.button.disabled = false;
    }
  }

  function closeGap(name, gap) {
    const ch = channels.get(name);
    if (ch) ch.gaps = ch.gaps.filter((g) => g !== gap);
    gap.li.remove();
  }

  function select(name) {
    current = name;
    channels.get(name).positioned = false;
    render();
    setState(els.state.dataset.state, els.stateLabel.textContent);
  }

  // ---- messages --------------------------------------------------------------------
  const byTs = (a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0);

  /** Index of the first message of `list` (sorted by ts) with ts >= `ts`. */
  function lowerBound(list, ts) {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].ts < ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Adds messages (any order, repeats ignored by id) to a channel. In view, only the
   * new nodes are inserted: the pane follows the newest messages when it was at the
   * bottom (or `sent`: the reader's own message), else it keeps what the reader looks at.
   */
  function addMessages(name, messages, { live: fromLive = false, sent = false } = {}) {
    const ch = channels.get(name);
    if (!ch) return;
    const fresh = [];
    for (const m of messages) {
      if (fromLive && (ch.lastTs === null || m.ts > ch.lastTs)) ch.lastTs = m.ts;
      if (ch.byId.has(m.id)) continue;
      ch.byId.set(m.id, m);
      fresh.push(m);
    }
    fresh.sort(byTs);
    const inView = name === current;
    // Where the reader is, taken while the list holds only messages that are in the DOM.
    const follow = inView && (sent || isNearBottom());
    const anchor = inView && !follow && ch.positioned && fresh.length ? scrollAnchor(ch) : null;
    for (const m of fresh) ch.list.splice(lowerBound(ch.list, m.ts), 0, m);
    if (inView) showInPane(ch, fresh, follow, anchor);
    else renderCounts();
  }

  function showInPane(ch, fresh, follow, anchor) {
    // Newest first: the message after the new one's place is already in the DOM.
    for (let k = fresh.length - 1; k >= 0; k -= 1) {
      const next = ch.list[lowerBound(ch.list, fresh[k].ts) + 1];
      els.messages.insertBefore(nodeFor(fresh[k]), next ? nodeFor(next) : null);
    }
    placeGaps(ch);
    els.loadOlder.hidden = !ch.more;
    if (!ch.positioned) placePane(ch);
    else if (follow) scrollToBottom();
    else if (anchor) els.scroller.scrollTop += anchor.node.getBoundingClientRect().top - anchor.top;
    markRead();
  }

  /** Puts each gap's button right above the first loaded message after the gap. */
  function placeGaps(ch) {
    for (const gap of ch.gaps) {
      const next = ch.list[lowerBound(ch.list, gap.before)];
      const ref = next ? nodeFor(next) : null;
      if (!gap.li.isConnected || gap.li.nextSibling !== ref) els.messages.insertBefore(gap.li, ref);
    }
  }

  function isNearBottom() {
    return els.scroller.scrollHeight - els.scroller.scrollTop - els.scroller.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  /** Index of the last message of the pane whose top is above `y` (viewport px), or -1. */
  function lastAbove(ch, y) {
    let lo = 0;
    let hi = ch.list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (nodeFor(ch.list[mid]).getBoundingClientRect().top < y) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** The first message whose bottom is on screen, and where it is (viewport px). */
  function scrollAnchor(ch) {
    const top = els.scroller.getBoundingClientRect().top;
    const i = lastAbove(ch, top);
    for (let j = Math.max(i, 0); j < ch.list.length; j += 1) {
      const rect = nodeFor(ch.list[j]).getBoundingClientRect();
      if (rect.bottom > top) return { node: nodeFor(ch.list[j]), top: rect.top };
    }
    return null;
  }

  /** Opens a channel at its first unread message (a little context above), else at the end. */
  function placePane(ch) {
    if (!ch.list.length) return;
    ch.positioned = true;
    for (const old of els.messages.querySelectorAll(".first-unread")) old.classList.remove("first-unread");
    scrollToBottom();
    const first = firstUnread(ch);
    if (!first) return;
    const node = nodeFor(first);
    node.classList.add("first-unread");
    const above = node.getBoundingClientRect().top - els.scroller.getBoundingClientRect().top - CONTEXT_PX;
    if (above < 0) els.scroller.scrollTop += above;
  }

  function firstUnread(ch) {
    if (ch.readTs === null) return null;
    for (let i = lowerBound(ch.list, ch.readTs + 1n); i < ch.list.length; i += 1) {
      if (ch.list[i].userid !== me.id) return ch.list[i];
    }
    return null;
  }

  /** Moves the read position of the channel in view to the newest message seen on screen. */
  function markRead() {
    const ch = current === null ? null : channels.get(current);
    if (ch && ch.list.length && document.visibilityState === "visible") {
      const i = lastAbove(ch, els.scroller.getBoundingClientRect().bottom - SEEN_PX);
      if (i >= 0) setRead(ch, ch.list[i].ts);
    }
    renderCounts();
  }

  // ---- read positions (localStorage, per user: {channel: "ts"}) ----------------------
  function storedReads() {
    try {
      const all = JSON.parse(localStorage.getItem(READ_KEY) || "{}");
      return all && typeof all === "object" ? all : {};
    } catch {
      return {};
    }
  }

  function storedRead(name) {
    const value = storedReads()[name];
    return typeof value === "string" && /^\d{1,19}$/.test(value) ? BigInt(value) : null;
  }

  function writeReads(change) {
    try {
      const all = storedReads();
      change(all);
      localStorage.setItem(READ_KEY, JSON.stringify(all));
    } catch {
      // Storage full or disabled: read positions last as long as the page.
    }
  }

  /** Moves a channel's read position forward to `ts` (never back), here and in storage. */
  function setRead(ch, ts) {
    if (ch.readTs !== null && ts <= ch.readTs) return;
    ch.readTs = ts;
    const stored = storedRead(ch.name);
    if (stored === null || ts > stored) writeReads((all) => { all[ch.name] = ts.toString(); });
  }

  function forgetRead(name) {
    if (storedRead(name) !== null) writeReads((all) => { delete all[name]; });
  }

  // ---- unread counts: sidebar badges, the new-messages button, the tab title --------
  /** Messages of others after the read position: `count` loaded ones, `more` when some
   * after it are not loaded (the first reply could not carry them all, or a gap after
   * the read position): then the count is a lower bound. */
  function unreadOf(ch) {
    if (ch.readTs === null) return { count: 0, more: false };
    let count = 0;
    for (let i = ch.list.length - 1; i >= 0 && ch.list[i].ts > ch.readTs; i -= 1) {
      if (ch.list[i].userid !== me.id) count += 1;
    }
    if (ch.unreadBeyond && !(ch.list.length && ch.list[0].ts > ch.readTs)) ch.unreadBeyond = false;
    return { count, more: ch.unreadBeyond || ch.gaps.some((gap) => gap.before > ch.readTs) };
  }

  const countLabel = ({ count, more }) => `${count}${more ? "+" : ""}`;

  function renderCounts() {
    let total = { count: 0, more: false };
    for (const ch of channels.values()) {
      const unread = unreadOf(ch);
      total = { count: total.count + unread.count, more: total.more || unread.more };
      const badge = ch.li.querySelector(".unread");
      const shown = ch.name !== current && (unread.count > 0 || unread.more);
      badge.textContent = shown ? countLabel(unread) : "";
      badge.hidden = !shown;
    }
    document.title = total.count || total.more ? `(${countLabel(total)}) ${pageTitle}` : pageTitle;
    const ch = current === null ? null : channels.get(current);
    const below = ch ? unreadOf(ch) : { count: 0, more: false };
    const marker = (below.count > 0 || below.more) && !isNearBottom();
    els.newMessages.hidden = !marker;
    if (marker) {
      els.newMessagesLabel.textContent =
        `${countLabel(below)} new message${below.count === 1 && !below.more ? "" : "s"}`;
    }
  }

  function render() {
    for (const ch of channels.values()) {
      ch.li.classList.toggle("current", ch.name === current);
      if (ch.name === current) ch.li.querySelector(".channel-name").setAttribute("aria-current", "true");
      else ch.li.querySelector(".channel-name").removeAttribute("aria-current");
    }
    const ch = current === null ? null : channels.get(current);
    els.title.textContent = ch ? `#${ch.name}` : "Pick or subscribe to a channel";
    els.messages.replaceChildren(...(ch ? ch.list.map(nodeFor) : []));
    els.loadOlder.hidden = !(ch && ch.more);
    if (ch) {
      placeGaps(ch);
      placePane(ch);
    }
    markRead();
  }

  function nodeFor(m) {
    let li = nodes.get(m);
    if (!li) {
      li = renderMessage(m);
      nodes.set(m, li);
    }
    return li;
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
  els.newMessages.addEventListener("click", () => {
    scrollToBottom();
    markRead();
  });
  let readQueued = false;
  els.scroller.addEventListener("scroll", () => {
    if (readQueued) return;
    readQueued = true;
    requestAnimationFrame(() => {
      readQueued = false;
      markRead();
    });
  }, { passive: true });
  document.addEventListener("visibilitychange", markRead);
  // Another tab of this user read further: take its read positions.
  window.addEventListener("storage", (event) => {
    if (event.key !== READ_KEY) return;
    for (const ch of channels.values()) {
      const stored = storedRead(ch.name);
      if (stored !== null && (ch.readTs === null || stored > ch.readTs)) ch.readTs = stored;
    }
    renderCounts();
  });

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
        addMessages(channel, [ack.message], { sent: true });
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
