// Podium's live board page: a plain ES module, no build step. It reads the
// public API and the board socket (docs/protocol.md "Live boards"). A player's
// 30-day history is private: the page shows it only with that player's token,
// given in the URL fragment (#token=...), which browsers never send to a server.
const $ = (id) => document.getElementById(id);
const page = document.body.dataset;
const params = new URLSearchParams(location.search);
const PERIODS = { all: "all time", day: "today", week: "this week" };
const state = {
  game: page.game,
  region: params.get("region") || "",
  period: params.get("period") in PERIODS ? params.get("period") : "all",
  top: Number(page.top),
  player: params.get("player") || "",
  token: new URLSearchParams(location.hash.slice(1)).get("token") || "",
};
const number = new Intl.NumberFormat();
const enc = encodeURIComponent;
if (params.get("overlay") === "1") document.body.classList.add("overlay");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function boardQuery(extra = {}) {
  const query = new URLSearchParams({ period: state.period, ...extra });
  if (state.region) query.set("region", state.region);
  return query;
}

async function getJSON(path, headers = {}) {
  // "no-cache": revalidate (the ETag makes an unchanged answer a bodiless 304) rather than reuse
  // a public read the browser may keep for public_cache_s: a refresh after a move must see it.
  const response = await fetch(path, { cache: "no-cache", headers: { accept: "application/json", ...headers } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw Object.assign(new Error(body.detail || response.statusText), { status: response.status, code: body.code });
  }
  return body;
}

function keepInUrl() {
  const query = boardQuery();
  if (state.period === "all") query.delete("period");
  if (state.player) query.set("player", state.player);
  for (const name of ["top", "overlay"]) if (params.get(name)) query.set(name, params.get(name));
  const search = query.toString();
  history.replaceState(null, "", location.pathname + (search ? `?${search}` : "") + location.hash);
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${kind}`;
}

// The board: each frame is the whole top N; `changed` names the rows to flash.
let shownRanks = new Map();

function renderBoard(frame) {
  const changed = new Set(frame.changed);
  const ranks = new Map();
  const rows = frame.entries.map((entry) => {
    const row = el("tr", { "data-player": entry.player_id },
      el("td", { class: "rank" }, String(entry.rank)), el("td", {}, entry.player_id),
      el("td", { class: "points" }, number.format(entry.points)));
    const before = shownRanks.get(entry.player_id);
    if (shownRanks.size && changed.has(entry.player_id)) {
      row.classList.add("moved", before === undefined || entry.rank < before ? "up" : entry.rank > before ? "down" : "same");
    }
    if (entry.player_id === state.player) row.classList.add("me");
    ranks.set(entry.player_id, entry.rank);
    return row;
  });
  if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "3" }, "No scores on this board yet")));
  $("board-rows").replaceChildren(...rows);
  $("board-total").textContent = `of ${number.format(frame.total)} players`;
  shownRanks = ranks;
  document.body.dataset.seq = frame.seq;
  if (state.player && nearPlayer(frame.entries, changed)) showPlayer();
}

// Whether the searched player's rank or neighbours moved: they changed, or (when they are in
// the top N) someone within AROUND ranks of them did. Below the top N only their own move is seen.
const AROUND = 3;

function nearPlayer(entries, changed) {
  if (changed.has(state.player)) return true;
  const mine = entries.find((e) => e.player_id === state.player);
  return mine !== undefined && entries.some((e) => changed.has(e.player_id) && Math.abs(e.rank - mine.rank) <= AROUND);
}

let socket = null;
let generation = 0;
let retryMs = 500;

function connect() {
  const mine = ++generation;
  socket?.close(1000);
  shownRanks = new Map();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/v1/ws/boards/${enc(state.game)}?${boardQuery({ top: state.top })}`);
  socket = ws;
  let pinger = 0;
  setStatus("connecting…", "");
  ws.onopen = () => {
    retryMs = 500;
    setStatus("live", "live");
    pinger = setInterval(() => ws.send("ping"), Number(page.pingMs));
  };
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (mine === generation && frame.type === "board") renderBoard(frame);
  };
  ws.onclose = () => {
    clearInterval(pinger);
    if (mine !== generation) return;  // replaced by a newer board
    const waitMs = retryMs * (0.5 + Math.random());
    retryMs = Math.min(retryMs * 2, 15000);
    setStatus(`reconnecting in ${Math.ceil(waitMs / 1000)} s`, "down");
    setTimeout(() => mine === generation && connect(), waitMs);
  };
}

// The pickers: games from the catalog, regions that hold players on this board.
async function loadGames() {
  const { games } = await getJSON("/v1/games");
  $("game").replaceChildren(...games.map((g) => el("option", { value: g.game_id }, g.name || g.game_id)));
  $("game").value = state.game;
}

async function loadRegions() {
  const board = await getJSON(`/v1/games/${enc(state.game)}/regions?${new URLSearchParams({ period: state.period })}`);
  const options = [el("option", { value: "" }, `Global (${number.format(board.total)})`),
    ...board.regions.map((r) => el("option", { value: r.region }, `${r.region} (${number.format(r.total)})`))];
  if (state.region && !board.regions.some((r) => r.region === state.region)) {
    options.push(el("option", { value: state.region }, `${state.region} (0)`));
  }
  $("region").replaceChildren(...options);
  $("region").value = state.region;
}

async function loadRarity() {
  const rarity = await getJSON(`/v1/games/${enc(state.game)}/achievements`);
  $("rarity-players").textContent = `held by ${number.format(rarity.players)} players`;
  const rarest = [...rarity.achievements].sort((a, b) => a.percent - b.percent);
  $("rarity-rows").replaceChildren(...rarest.map((a) => {
    const meter = el("span");
    meter.style.width = `${Math.min(100, a.percent)}%`;  // CSSOM: the page's CSP allows no inline styles
    return el("li", { "data-achievement": a.achievement_id },
      el("span", {}, `${a.name} `, el("small", {}, `${a.points} pts`)),
      el("span", { class: "muted" }, `${a.percent}%`), el("div", { class: "meter" }, meter));
  }));
}

// The player search: rank and around-me on the board shown, and the history chart.
let asking = null;

async function showPlayer() {
  if (asking) return asking.then(showPlayer);  // one look at a time; the next one sees the newest board
  asking = lookUp(state.player).finally(() => { asking = null; });
  return asking;
}

async function lookUp(player) {
  const card = $("player-card"), missing = $("player-missing");
  if (!player) { card.hidden = missing.hidden = true; return; }
  const base = `/v1/games/${enc(state.game)}/players/${enc(player)}`;
  try {
    const [rank, around] = await Promise.all([
      getJSON(`${base}/rank?${boardQuery()}`), getJSON(`${base}/around?${boardQuery({ k: AROUND })}`)]);
    if (player !== state.player) return;
    const where = `${state.region || "global"}, ${PERIODS[state.period]}`;
    $("player-rank").textContent = `${player}: #${number.format(rank.rank)} of ${number.format(rank.total)}`;
    $("player-detail").textContent =
      `${number.format(rank.points)} points · top ${topShare(rank.rank, rank.total)} · ${where}`;
    $("around-rows").replaceChildren(...around.entries.map((e) => el("tr",
      { "data-player": e.player_id, class: e.player_id === player ? "me" : "" },
      el("td", { class: "rank" }, String(e.rank)), el("td", {}, e.player_id),
      el("td", { class: "points" }, number.format(e.points)))));
    card.hidden = false;
    missing.hidden = true;
    await showHistory(player);
  } catch (error) {
    if (player !== state.player) return;
    card.hidden = true;
    missing.hidden = false;
    missing.textContent = error.code === "unknown_player" ? `${player} has no score on this board` : error.message;
  }
}

function topShare(rank, total) {
  const share = (100 * rank) / total;
  return `${share < 10 ? share.toPrecision(2) : Math.round(share)}%`;
}

async function showHistory(player) {
  const box = $("history");
  if (!state.token) {
    box.replaceChildren(el("p", { class: "muted" }, "Private to the player: shown when their game opens this page with their token."));
    return;
  }
  try {
    const history = await getJSON(`/v1/players/${enc(player)}/history?game=${enc(state.game)}&days=30`,
      { authorization: `Bearer ${state.token}` });
    box.replaceChildren(chart(history.days));
  } catch (error) {
    box.replaceChildren(el("p", { class: "muted" }, error.status === 401 ? "Private: the token given is not this player's." : error.message));
  }
}

function chart(days) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const most = Math.max(1, ...days.map((d) => d.points));
  const total = days.reduce((sum, d) => sum + d.points, 0);
  svg.setAttribute("viewBox", `0 0 ${days.length * 10} 80`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${total} points in ${days.length} days; best day ${most}`);
  days.forEach((day, i) => {
    const height = day.points ? Math.max(3, (76 * day.points) / most) : 2;
    const bar = document.createElementNS(ns, "rect");
    for (const [name, value] of Object.entries({ x: i * 10 + 1, y: 80 - height, width: 8, height })) bar.setAttribute(name, value);
    if (!day.points) bar.setAttribute("class", "zero");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${day.day_start.slice(0, 10)}: ${day.points} points, ${day.unlocked} unlocks`;
    bar.append(title);
    svg.append(bar);
  });
  return el("figure", { class: "chart" }, svg, el("figcaption", { class: "muted" },
    `${days[0].day_start.slice(0, 10)} to ${days.at(-1).day_start.slice(0, 10)}: ${number.format(total)} points`,
    ` · best day ${number.format(total ? most : 0)}`));
}

// Wiring.
function switchBoard() {
  keepInUrl();
  for (const b of document.querySelectorAll("[data-period]")) b.setAttribute("aria-pressed", String(b.dataset.period === state.period));
  connect();
  showPlayer();
}

$("region").addEventListener("change", (event) => { state.region = event.target.value; switchBoard(); });
for (const button of document.querySelectorAll("[data-period]")) {
  button.addEventListener("click", () => {
    state.period = button.dataset.period;
    switchBoard();
    loadRegions().catch(() => {});
  });
}
$("game").addEventListener("change", (event) => {
  location.assign(`/boards/${enc(event.target.value)}${location.search}${location.hash}`);
});
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  state.player = $("player").value.trim();
  keepInUrl();
  showPlayer();
});

$("player").value = state.player;
switchBoard();
for (const load of [loadGames, loadRegions, loadRarity]) load().catch((error) => console.warn(load.name, error));
