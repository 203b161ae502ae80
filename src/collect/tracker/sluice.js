/*
 * sluice.js: Sluice's first-party browser tracker. No dependencies; served at /sluice.js.
 *
 * Sends Segment-format events to the Sluice collector's /v1/batch endpoint with the write key:
 * page views (also on single-page-app route changes, by the History API or a hash router), page
 * pings with engaged time, clicks on elements marked data-sluice-event, identify and custom track
 * calls. The anonymous id lives in a
 * first-party cookie (sluice_aid), the user id in localStorage. Events are batched; a batch goes
 * out with fetch (keepalive), is retried with exponential backoff when the collector cannot take it
 * (network error, 429, 5xx), and whatever is queued when the page is hidden goes by sendBeacon.
 * Events the collector could not take (retries running or used up, or the browser offline) are
 * also kept in localStorage and sent again by the next page: the collector drops the copies of
 * those that did arrive, by messageId.
 *
 * Install: the README's snippet, or <script async src=".../sluice.js" data-write-key="KEY"></script>.
 * API: sluice.init(writeKey, options), sluice.page(name?, properties?), sluice.track(event,
 * properties?), sluice.identify(userId, traits?), sluice.reset(), sluice.flush().
 */
(() => {
  const VERSION = "1.0.0";
  const ANONYMOUS_COOKIE = "sluice_aid";
  const USER_KEY = "sluice_uid";
  const MAX_BEACON_BYTES = 60000;
  /** localStorage key of events kept for the next page, and how many at most. */
  const OUTBOX_KEY = "sluice_outbox";
  const MAX_KEPT = 500;
  const w = window;
  const d = document;
  const script = d.currentScript;

  const existing = w.sluice;
  if (existing?.loaded) return;

  const defaults = {
    host: script?.src ? new URL(script.src).origin : "",
    autoPage: true,
    trackClicks: true,
    pagePings: true,
    pingIntervalSeconds: 15,
    engagedWindowSeconds: 10,
    flushIntervalMs: 2000,
    batchSize: 20,
    maxRetries: 8,
    retryBaseMs: 1000,
    cookieDomain: "",
    cookieDays: 365,
  };

  let options = defaults;
  let writeKey = "";
  let started = false;
  let queue = [];
  /** The batch being sent; not in `queue` meanwhile. */
  let inFlight = [];
  let flushTimer = null;
  let retryTimer = null;
  let retries = 0;
  let anonymousId = null;
  let userId = null;
  let lastPage = "";
  let engagedSeconds = 0;
  let reportedSeconds = 0;
  let lastActivity = 0;

  function uuid() {
    if (w.crypto?.randomUUID) return w.crypto.randomUUID();
    const bytes = w.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function readCookie(name) {
    const found = d.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  function writeCookie(name, value, days) {
    const domain = options.cookieDomain ? `; Domain=${options.cookieDomain}` : "";
    const secure = location.protocol === "https:" ? "; Secure" : "";
    // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is not in every browser (Safari, older Firefox).
    d.cookie = `${name}=${encodeURIComponent(value)}; Max-Age=${days * 86400}; Path=/; SameSite=Lax${domain}${secure}`;
  }

  function storage(action, key, value) {
    try {
      if (action === "get") return w.localStorage.getItem(key);
      if (action === "set") w.localStorage.setItem(key, value);
      else w.localStorage.removeItem(key);
    } catch {
      // Storage can be blocked (privacy modes); the user id then lasts as long as the page.
    }
    return null;
  }

  function ensureAnonymousId() {
    anonymousId = readCookie(ANONYMOUS_COOKIE) || anonymousId || uuid();
    // Renewed on every start so that an active visitor keeps the id.
    writeCookie(ANONYMOUS_COOKIE, anonymousId, options.cookieDays);
  }

  function pageFacts() {
    return {
      url: location.href,
      path: location.pathname,
      search: location.search,
      title: d.title,
      referrer: d.referrer,
    };
  }

  function enqueue(type, fields) {
    if (!started) return;
    const message = {
      type,
      messageId: uuid(),
      timestamp: new Date().toISOString(),
      anonymousId,
      context: {
        page: pageFacts(),
        userAgent: navigator.userAgent,
        locale: navigator.language,
        screen: { width: w.screen.width, height: w.screen.height },
        library: { name: "sluice.js", version: VERSION },
      },
    };
    if (userId) message.userId = userId;
    Object.assign(message, fields);
    queue.push(message);
    if (queue.length >= options.batchSize) flush();
    else if (flushTimer === null && retryTimer === null)
      flushTimer = setTimeout(flush, options.flushIntervalMs);
  }

  function body(batch) {
    return JSON.stringify({ writeKey, batch, sentAt: new Date().toISOString() });
  }

  // text/plain keeps the request "simple": no CORS preflight before each batch.
  function flush() {
    clearTimeout(flushTimer);
    flushTimer = null;
    if (inFlight.length > 0 || retryTimer !== null || queue.length === 0) return;
    const batch = queue.splice(0, options.batchSize);
    inFlight = batch;
    fetch(`${options.host}/v1/batch`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: body(batch),
      keepalive: true,
      credentials: "omit",
    })
      .then((response) => {
        // Other 4xx answers refuse the events themselves: sending them again would not help.
        if (response.status === 429 || response.status >= 500) throw new Error(`HTTP ${response.status}`);
        return true;
      })
      .catch(() => false)
      .then((delivered) => {
        // A beacon may have taken the batch over meanwhile.
        const stillOurs = inFlight === batch;
        inFlight = [];
        if (delivered || retries >= options.maxRetries || !stillOurs) {
          // Given up on for this page: the next one tries again.
          if (!delivered && stillOurs) keepForNextPage(batch);
          retries = 0;
          if (queue.length > 0) flush();
          return;
        }
        queue = batch.concat(queue);
        const delay = Math.min(options.retryBaseMs * 2 ** retries, 60000) * (0.5 + Math.random() / 2);
        retries++;
        retryTimer = setTimeout(() => {
          retryTimer = null;
          flush();
        }, delay);
      });
  }

  /** Messages an earlier page kept for this one (none when storage is blocked or garbled). */
  function keptMessages() {
    try {
      return JSON.parse(storage("get", OUTBOX_KEY) || "[]");
    } catch {
      return [];
    }
  }

  /** Keeps messages in localStorage for the next page to send (at most MAX_KEPT, the newest). */
  function keepForNextPage(messages) {
    storage("set", OUTBOX_KEY, JSON.stringify(keptMessages().concat(messages).slice(-MAX_KEPT)));
  }

  // The page is going away: everything not yet delivered goes by beacon, which survives unloading.
  // A beacon's delivery is not reported: when the collector was failing, a copy is kept too. A
  // beacon the browser refuses to queue (over its quota of data in flight) is kept instead.
  function flushByBeacon() {
    pingIfEngaged();
    const messages = inFlight.concat(queue);
    inFlight = [];
    queue = [];
    if (messages.length === 0) return;
    const kept = retries > 0 || navigator.onLine === false;
    if (kept) keepForNextPage(messages);
    const url = `${options.host}/v1/batch`;
    const send = (batch) => {
      if (!navigator.sendBeacon(url, body(batch)) && !kept) keepForNextPage(batch);
    };
    let batch = [];
    let size = 0;
    for (const message of messages) {
      const length = JSON.stringify(message).length;
      if (batch.length > 0 && size + length > MAX_BEACON_BYTES) {
        send(batch);
        batch = [];
        size = 0;
      }
      batch.push(message);
      size += length;
    }
    send(batch);
  }

  function page(name, properties) {
    const facts = pageFacts();
    lastPage = route();
    engagedSeconds = 0;
    reportedSeconds = 0;
    const fields = { properties: Object.assign(facts, properties || {}) };
    if (name) fields.name = name;
    enqueue("page", fields);
  }

  function track(event, properties) {
    enqueue("track", { event, properties: properties || {} });
  }

  function identify(id, traits) {
    if (id !== undefined && id !== null && id !== "") {
      userId = String(id);
      storage("set", USER_KEY, userId);
    }
    enqueue("identify", { traits: traits || {} });
  }

  function reset() {
    userId = null;
    storage("remove", USER_KEY);
    anonymousId = uuid();
    writeCookie(ANONYMOUS_COOKIE, anonymousId, options.cookieDays);
  }

  function pingIfEngaged() {
    if (!options.pagePings || engagedSeconds <= reportedSeconds) return;
    reportedSeconds = engagedSeconds;
    enqueue("track", {
      event: "page_ping",
      properties: { engaged_seconds: engagedSeconds, path: location.pathname },
    });
  }

  // Engaged: the page is visible and the visitor did something within the last few seconds.
  function watchEngagement() {
    const active = () => {
      lastActivity = Date.now();
    };
    for (const type of ["mousemove", "mousedown", "keydown", "scroll", "touchstart", "wheel"]) {
      w.addEventListener(type, active, { passive: true, capture: true });
    }
    active();
    let tick = 0;
    setInterval(() => {
      if (
        d.visibilityState === "visible" &&
        Date.now() - lastActivity < options.engagedWindowSeconds * 1000
      ) {
        engagedSeconds++;
      }
      tick++;
      if (tick >= options.pingIntervalSeconds) {
        tick = 0;
        pingIfEngaged();
      }
    }, 1000);
  }

  /** Where the visitor is: path and query, and the fragment when a hash router uses it (#/orders). */
  function route() {
    const hash = location.hash;
    // An in-page anchor (#reviews) is not a new page.
    return location.pathname + location.search + (/^#!?\//.test(hash) ? hash : "");
  }

  // Single-page apps change the URL with the History API, or the fragment with a hash router; each
  // new route is a page view.
  function watchRoutes() {
    const changed = () => {
      if (route() !== lastPage) {
        pingIfEngaged();
        page();
      }
    };
    for (const method of ["pushState", "replaceState"]) {
      const original = history[method];
      history[method] = function (...args) {
        const result = original.apply(this, args);
        changed();
        return result;
      };
    }
    w.addEventListener("popstate", changed);
    w.addEventListener("hashchange", changed);
  }

  function watchClicks() {
    d.addEventListener(
      "click",
      (event) => {
        const element = event.target instanceof Element ? event.target.closest("[data-sluice-event]") : null;
        if (!element) return;
        const properties = {};
        for (const [key, value] of Object.entries(element.dataset)) {
          if (key.startsWith("sluice") && key !== "sluiceEvent") {
            properties[key.charAt(6).toLowerCase() + key.slice(7)] = value;
          }
        }
        const text = (element.textContent || "").trim().slice(0, 100);
        if (text) properties.text = text;
        if (element.getAttribute("href")) properties.href = element.href;
        track(element.getAttribute("data-sluice-event"), properties);
      },
      true,
    );
  }

  function init(key, settings) {
    if (started) return;
    writeKey = key;
    options = Object.assign({}, defaults, settings || {});
    started = true;
    ensureAnonymousId();
    userId = storage("get", USER_KEY);
    queue = keptMessages();
    storage("remove", OUTBOX_KEY);
    if (queue.length > 0) flushTimer = setTimeout(flush, 0);
    d.addEventListener("visibilitychange", () => {
      if (d.visibilityState === "hidden") flushByBeacon();
    });
    w.addEventListener("pagehide", flushByBeacon);
    if (options.pagePings) watchEngagement();
    if (options.trackClicks) watchClicks();
    watchRoutes();
    if (options.autoPage) page();
  }

  const api = { loaded: true, init, page, track, identify, reset, flush };
  w.sluice = api;

  // Calls made before the script loaded (the snippet's stub queues them), init first.
  const pending = existing?.q || [];
  const scriptKey = script?.getAttribute("data-write-key");
  if (scriptKey && !pending.some((call) => call[0] === "init")) init(scriptKey);
  for (const [method, args] of pending.filter((call) => call[0] === "init")) api[method](...args);
  for (const [method, args] of pending.filter((call) => call[0] !== "init")) api[method](...args);
})();
