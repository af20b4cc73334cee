// Podium's live board page: a plain ES module, no build step. It reads the
// public API and the board socket (docs/protocol.md "Live boards"). A player's
// 30-day history and progress are private: the page shows them only with that player's
// token, given in the URL fragment (#token=...), which browsers never send to a server.
// A game's stat boards (from the catalog read) are offered beside its points board:
// their all-time, day and week boards live over the socket, a season read every few seconds.
const $ = (id) => document.getElementById(id);
const page = document.body.dataset;
const params = new URLSearchParams(location.search);
const PERIODS = { all: "all time", day: "today", week: "this week", season: "season" };
const SEASON_POLL_MS = 5000;  // a season has no socket: its page is read again this often while open
const state = {
  game: page.game,
  region: params.get("region") || "",
  period: params.get("period") in PERIODS ? params.get("period") : "all",
  board: params.get("board") || "",  // "" : the achievement-points board
  season: params.get("season") || "",
  info: null,  // the game's entry of the catalog read (achievements, stats, boards)
  top: Number(page.top),
  player: params.get("player") || "",
  token: new URLSearchParams(location.hash.slice(1)).get("token") || "",
};
const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });  // stat values are integers
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
  if (state.board) query.set("board", state.board);
  if (state.board && state.period === "season" && state.season) query.set("season", state.season);
  return query;
}

// A row's score: a points board's points, a stat board's value.
const score = (entry) => entry.value ?? entry.points;
const statBoard = () => state.info?.boards.find((b) => b.board_id === state.board) || null;

// The seasons the page offers: those already started (a closed one shows its final standings), newest first.
function seasonsShown(board, now = Date.now()) {
  return (board?.seasons || []).filter((s) => Date.parse(s.start) <= now).reverse();
}

function seasonShown(board, now = Date.now()) {
  const seasons = seasonsShown(board, now);
  return seasons.find((s) => s.season_id === state.season)
    || seasons.find((s) => now < Date.parse(s.end)) || seasons[0] || null;
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
  const changed = new Set(frame.changed ?? frame.entries
    .filter((e) => shownRanks.get(e.player_id) !== e.rank).map((e) => e.player_id));
  const ranks = new Map();
  const rows = frame.entries.map((entry) => {
    const row = el("tr", { "data-player": entry.player_id },
      el("td", { class: "rank" }, String(entry.rank)), el("td", {}, entry.player_id),
      el("td", { class: "points" }, number.format(score(entry))));
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
let seasonTimer = 0;
let seasonSeq = 0;

// The board shown: a socket for the points board and a stat board's all-time, day and week
// boards; a season is read (the open one every SEASON_POLL_MS, a closed one's final standings once).
function follow() {
  clearTimeout(seasonTimer);
  if (state.period !== "season") return connect();
  const mine = ++generation;
  socket?.close(1000);
  socket = null;
  shownRanks = new Map();
  setStatus("connecting…", "");
  return readSeason(mine);
}

async function readSeason(mine) {
  await catalogReady;
  const board = statBoard(), season = seasonShown(board);
  if (mine !== generation) return;
  if (!season) {
    renderBoard({ entries: [], total: 0, changed: [], seq: ++seasonSeq });
    setStatus("no season", "down");
    return;
  }
  state.season = season.season_id;
  keepInUrl();
  const closed = Date.parse(season.end) <= Date.now();
  const path = `/v1/games/${enc(state.game)}`;
  try {
    const query = new URLSearchParams({ limit: state.top });
    if (state.region) query.set("region", state.region);
    const body = closed
      ? await getJSON(`${path}/boards/${enc(state.board)}/seasons/${enc(season.season_id)}/standings?${query}`)
      : await getJSON(`${path}/leaderboard?${boardQuery({ limit: state.top })}`);
    if (mine !== generation) return;
    renderBoard({ entries: body.entries, total: body.total, seq: ++seasonSeq });
    if (closed && body.closed) { setStatus("final standings", "live"); return; }
    setStatus(closed ? "closing…" : "season: updated every 5 s", closed ? "" : "live");
  } catch (error) {
    if (mine !== generation) return;
    setStatus(error.message, "down");
  }
  seasonTimer = setTimeout(() => mine === generation && readSeason(mine), SEASON_POLL_MS);
}

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
  state.info = games.find((g) => g.game_id === state.game) || null;
  const boards = state.info?.boards || [];
  if (boards.length) {  // a game without stat boards shows no board picker at all
    $("board").replaceChildren(el("option", { value: "" }, "Points"),
      ...boards.map((b) => el("option", { value: b.board_id }, b.name || b.board_id)));
    $("board").value = state.board;
    $("board-pick").hidden = false;
  }
  showControls();
}
const catalogReady = loadGames().catch((error) => console.warn("loadGames", error));

// The period buttons, season picker, value column and caption of the board shown.
function showControls() {
  const board = statBoard();
  const seasons = seasonsShown(board);
  for (const b of document.querySelectorAll("[data-period]")) {
    const period = b.dataset.period;
    b.setAttribute("aria-pressed", String(period === state.period));
    if (state.board && !state.info) b.hidden = period !== state.period;  // until the catalog read tells the rest
    else b.hidden = board ? (period === "season" ? !seasons.length : !board.periods.includes(period)) : period === "season";
  }
  if (state.board && !state.info) return;  // the served page already names the value column
  $("season-pick").hidden = state.period !== "season";
  if (state.period === "season") {
    const now = Date.now();
    $("season").replaceChildren(...seasons.map((s) => el("option", { value: s.season_id },
      `${s.season_id} (${Date.parse(s.end) <= now ? "final" : "open"})`)));
    $("season").value = seasonShown(board)?.season_id || "";
  }
  const stat = board && state.info.stats.find((s) => s.stat_id === board.stat_id);
  $("value-head").textContent = board ? (stat?.name || board.stat_id) : "Points";
  $("board-note").hidden = !board;
  $("board-note").textContent = board ? `${board.name || board.board_id}: ${board.order === "asc"
    ? "lower is better" : "higher is better"}` : "";
}

async function loadRegions() {
  const query = boardQuery();
  query.delete("region");
  const board = await getJSON(`/v1/games/${enc(state.game)}/regions?${query}`);
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
  asking = Promise.all([lookUp(state.player), showProgress(state.player)]).finally(() => { asking = null; });
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
    const when = state.period === "season" ? `season ${state.season}` : PERIODS[state.period];
    const where = `${state.region || "global"}, ${when}`;
    const unit = state.board ? $("value-head").textContent : "points";
    $("player-rank").textContent = `${player}: #${number.format(rank.rank)} of ${number.format(rank.total)}`;
    $("player-detail").textContent =
      `${number.format(score(rank))} ${unit} · top ${topShare(rank.rank, rank.total)} · ${where}`;
    $("around-rows").replaceChildren(...around.entries.map((e) => el("tr",
      { "data-player": e.player_id, class: e.player_id === player ? "me" : "" },
      el("td", { class: "rank" }, String(e.rank)), el("td", {}, e.player_id),
      el("td", { class: "points" }, number.format(score(e))))));
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

// Progress towards the game's threshold achievements (private, like the history: the player's token).
async function showProgress(player) {
  await catalogReady;
  const box = $("progress-box"), note = $("progress-note");
  if (!player || !state.info?.stats.length) { box.hidden = true; return; }  // a game without stats: as before
  const say = (text) => { $("progress-rows").replaceChildren(); note.textContent = text; note.hidden = false; };
  box.hidden = false;
  if (!state.token) { say("Private to the player: shown when their game opens this page with their token."); return; }
  try {
    const progress = await getJSON(`/v1/players/${enc(player)}/progress?game=${enc(state.game)}`,
      { authorization: `Bearer ${state.token}` });
    if (player !== state.player) return;
    if (!progress.achievements.length) { box.hidden = true; return; }
    const names = new Map(state.info.achievements.map((a) => [a.achievement_id, a.name]));
    $("progress-rows").replaceChildren(...progress.achievements.map((a) => progressItem(a, names)));
    note.hidden = true;
  } catch (error) {
    if (player === state.player) say([401, 403].includes(error.status) ? "Private: the token given is not this player's." : error.message);
  }
}

function progressItem(a, names) {
  const name = names.get(a.achievement_id) || a.achievement_id;
  const bar = el("span", a.done ? { class: "done" } : {});
  bar.style.width = `${Math.min(100, a.percent)}%`;  // CSSOM: the page's CSP allows no inline styles
  return el("li", { "data-achievement": a.achievement_id },
    el("span", {}, `${name} `, el("small", {}, `${a.value === null ? "—" : number.format(a.value)} / ${number.format(a.target)}`)),
    el("span", { class: "muted" }, a.done ? "done" : `${a.percent}%`),
    el("div", { class: "meter", role: "progressbar", "aria-label": `${name}: ${a.percent}%`, "aria-valuemin": "0",
      "aria-valuemax": "100", "aria-valuenow": String(a.percent) }, bar));
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
  showControls();
  follow();
  showPlayer();
}

$("region").addEventListener("change", (event) => { state.region = event.target.value; switchBoard(); });
for (const button of document.querySelectorAll("[data-period]")) {
  button.addEventListener("click", () => {
    state.period = button.dataset.period;
    if (state.period !== "season") state.season = "";
    switchBoard();
    loadRegions().catch(() => {});
  });
}
$("board").addEventListener("change", (event) => {
  state.board = event.target.value;
  state.season = "";
  const board = statBoard();
  const periods = board ? board.periods : ["all", "day", "week"];
  if (!periods.includes(state.period)) state.period = periods[0] || "season";
  switchBoard();
  loadRegions().catch(() => {});
});
$("season").addEventListener("change", (event) => {
  state.season = event.target.value;
  switchBoard();
  loadRegions().catch(() => {});
});
$("game").addEventListener("change", (event) => {
  const query = new URLSearchParams(location.search);
  for (const name of ["board", "season"]) query.delete(name);  // another game's boards are its own
  if (query.get("period") === "season") query.delete("period");
  location.assign(`/boards/${enc(event.target.value)}?${query}${location.hash}`);
});
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  state.player = $("player").value.trim();
  keepInUrl();
  showPlayer();
});

$("player").value = state.player;
switchBoard();
for (const load of [loadRegions, loadRarity]) load().catch((error) => console.warn(load.name, error));
