/* The status page's script (web/web.h).  Reads the REST API every 3 s and
 * updates the page in place: services, sources, jobs with their status
 * (GET /api/v1/jobs/status), start and stop buttons, a form that creates a
 * professional-mode job from pasted YAML.  When a call answers 401 the page
 * asks for the API token and keeps it in sessionStorage (this tab only).
 *
 * Each poll also adds a sample of every job's rows/s and lag to a ring that
 * covers the last 15 minutes, drawn as inline SVG sparklines: the trend lives
 * in this page only (a reload starts it again), so the server keeps no
 * history.  A click on a job's name opens its view: effective YAML
 * (GET /jobs/{id}/config), tasks, partitions with offsets, the latest
 * rejected rows, offsets reset and delete.
 *
 * Values from the server reach the page through textContent and attribute
 * setters only, never as markup.
 */
(function () {
	"use strict";

	var API = "/api/v1";
	var POLL_MS = 3000;
	var PAGE_SIZE = 100;      /* the API's largest page */
	var LIST_PAGES_MAX = 20;  /* at most 2,000 services, sources or jobs listed */
	var JOBS_EVERY = 10;      /* polls between two full reads of the job list */
	var TOKEN_KEY = "streamserver.token";
	var TREND_MS = 15 * 60 * 1000;  /* the sparklines' window */
	var TREND_MAX = 600;            /* samples kept per job: 15 min at 1.5 s */
	var SPARK_W = 96, SPARK_H = 28;
	var REJECTS_SHOWN = 10;         /* rejected rows in the job view */
	var PREVIEW_MAX = 160;          /* characters of a payload shown */
	var SVG_NS = "http://www.w3.org/2000/svg";

	var page = {
		services: [],
		sources: [],
		jobs: {},      /* job id -> list item (source_id, mode, topic, table) */
		trend: {},     /* job id -> [{t, rps, lag}], oldest first, TREND_MS long */
		view: null,    /* the job view: {id, rejected, state} while open */
		status: {},    /* job id -> status object */
		pending: {},   /* job id -> true while a start/stop is under way */
		timer: null,
		authNeeded: false,
		refreshes: 0
	};

	function $(id) {
		return document.getElementById(id);
	}

	/* An element with text (never markup) and attributes. */
	function el(tag, attrs, text) {
		var e = document.createElement(tag);
		var k;

		for (k in attrs || {})
			if (Object.prototype.hasOwnProperty.call(attrs, k))
				e.setAttribute(k, attrs[k]);
		if (text !== undefined && text !== null)
			e.textContent = String(text);
		return e;
	}

	function clear(node) {
		while (node.firstChild)
			node.removeChild(node.firstChild);
	}

	function getToken() {
		try {
			return window.sessionStorage.getItem(TOKEN_KEY) || "";
		} catch (e) {
			return "";
		}
	}

	function setToken(t) {
		try {
			if (t)
				window.sessionStorage.setItem(TOKEN_KEY, t);
			else
				window.sessionStorage.removeItem(TOKEN_KEY);
		} catch (e) {
			/* storage off: the token lives until the next 401 */
		}
		page.memToken = t;
	}

	function token() {
		return getToken() || page.memToken || "";
	}

	function num(v) {
		if (v === null || v === undefined || typeof v !== "number" || !isFinite(v))
			return "\u2013";
		return v.toLocaleString("en-US");
	}

	function rate(v) {
		if (typeof v !== "number" || !isFinite(v))
			return "\u2013";
		return v.toLocaleString("en-US", { maximumFractionDigits: v < 100 ? 1 : 0 });
	}

	function timeOf(iso) {
		var d = iso ? new Date(iso) : null;

		return d && !isNaN(d.getTime()) ? d.toLocaleTimeString("en-GB") : "";
	}

	/* How long ago an RFC 3339 time was ("4 s ago", "2 min ago"), or "". */
	function ago(iso) {
		var t = iso ? Date.parse(iso) : NaN;
		var s;

		if (isNaN(t))
			return "";
		s = Math.max(0, Math.round((Date.now() - t) / 1000));
		if (s < 60)
			return s + " s ago";
		if (s < 3600)
			return Math.floor(s / 60) + " min ago";
		if (s < 86400)
			return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min ago";
		return Math.floor(s / 86400) + " d ago";
	}

	/* A value of the effective YAML (written by the server's emitter: block
	 * mappings, two-space indents, plain or quoted scalars) at a dotted path
	 * such as KAFKA.OUTPUT.TABLE, or null. */
	function yamlValue(yaml, path) {
		var want = path.split(".");
		var stack = [];   /* [{indent, key}] of the enclosing keys */
		var lines = String(yaml || "").split("\n");

		for (var i = 0; i < lines.length; i++) {
			var m = /^( *)([A-Za-z_][A-Za-z0-9_.]*):(?: +(.*))?$/.exec(lines[i]);
			var v;

			if (!m)
				continue;
			while (stack.length && stack[stack.length - 1].indent >= m[1].length)
				stack.pop();
			stack.push({ indent: m[1].length, key: m[2] });
			if (stack.length !== want.length || m[3] === undefined)
				continue;
			if (!stack.every(function (k, j) { return k.key === want[j]; }))
				continue;
			v = m[3].trim();
			if (v.charAt(0) === "'")
				return v.slice(1, v.lastIndexOf("'")).replace(/''/g, "'");
			if (v.charAt(0) === '"') {
				try {
					return JSON.parse(v);
				} catch (e) {
					return v.slice(1, -1);
				}
			}
			return v;
		}
		return null;
	}

	/* What a job reads and where it writes: {topic, table} from its list
	 * item (wizard fields, or a professional job's effective YAML), the
	 * topic falling back to its source's. */
	function jobFlow(item) {
		var topic = null, schema = null, table = null;

		if (item.mode === "professional" && item.config) {
			topic = yamlValue(item.config, "KAFKA.INPUT.SOURCE.TOPIC");
			schema = yamlValue(item.config, "KAFKA.OUTPUT.SCHEMA");
			table = yamlValue(item.config, "KAFKA.OUTPUT.TABLE");
		} else if (item.mode !== "professional") {
			schema = item.schema;
			table = item.table;
		}
		return { topic: topic, table: table ? (schema || "public") + "." + table : null };
	}

	/* An API failure: status (0 when the server was not reached), the
	 * message of the error body and the body itself. */
	function ApiError(status, message, body) {
		this.status = status;
		this.message = message;
		this.body = body;
	}

	/* One call of the REST API; resolves with the decoded body, rejects with
	 * an ApiError.  A 401 also brings up the token form. */
	function api(method, path, body, asText) {
		var headers = { "Accept": asText ? "application/yaml, application/json" : "application/json" };
		var init = { method: method, headers: headers, cache: "no-store" };
		var t = token();

		if (t)
			headers.Authorization = "Bearer " + t;
		if (body !== undefined) {
			headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		return fetch(API + path, init).then(function (resp) {
			return resp.text().then(function (text) {
				var data = null;
				var msg;

				if (resp.ok && asText)
					return text;
				try {
					data = text ? JSON.parse(text) : null;
				} catch (e) {
					data = null;
				}
				if (resp.ok)
					return data;
				msg = data && data.error && data.error.message ? data.error.message
					: "HTTP " + resp.status + " " + (resp.statusText || "");
				if (resp.status === 401)
					askToken(msg);
				throw new ApiError(resp.status, msg, data);
			});
		}, function (e) {
			throw new ApiError(0, "cannot reach the server: " + (e && e.message ? e.message : e), null);
		});
	}

	/* Every item of a paged list (services, sources, jobs). */
	function listAll(path) {
		var items = [];

		function next(n) {
			return api("GET", path + "?page=" + n + "&page_size=" + PAGE_SIZE).then(function (body) {
				var got = body && Array.isArray(body.items) ? body.items : [];

				items = items.concat(got);
				if (got.length === PAGE_SIZE && items.length < body.total && n < LIST_PAGES_MAX)
					return next(n + 1);
				return items;
			});
		}
		return next(1);
	}

	/* ------------------------------------------------------------ token */

	function askToken(msg) {
		var had = token() !== "";

		page.authNeeded = true;
		$("auth").hidden = false;
		$("app").hidden = true;
		$("auth-message").textContent = had
			? "The server refused the token (" + msg + "). Enter a valid one."
			: "The API needs a token (" + msg + ").";
		$("token-forget").hidden = true;
		if (document.activeElement !== $("token-input"))
			$("token-input").focus();
	}

	function onToken(ev) {
		var t = $("token-input").value.trim();

		ev.preventDefault();
		if (!t)
			return;
		setToken(t);
		$("token-input").value = "";
		page.authNeeded = false;
		$("auth").hidden = true;
		refreshNow();
	}

	function onForget() {
		setToken("");
		page.memToken = "";
		refreshNow();
	}

	/* ------------------------------------------------------------ jobs */

	var STATE_CLASS = {
		running: "ok", starting: "info", stopping: "info", retrying: "warn",
		degraded: "warn", failed: "bad", stopped: "idle", standby: "idle"
	};

	function sourceTopic(id) {
		for (var i = 0; i < page.sources.length; i++)
			if (page.sources[i].id === id)
				return page.sources[i].topic;
		return null;
	}

	/* ------------------------------------------------------------ trends */

	/* One sample per poll for every job; samples past the window go. */
	function sampleTrends(status) {
		var now = Date.now();

		Object.keys(status).forEach(function (id) {
			var st = status[id];
			var ring = page.trend[id] || (page.trend[id] = []);

			ring.push({ t: now, rps: isLive(st) && typeof st.rows_per_second === "number"
				? st.rows_per_second : 0, lag: liveLag(st) });
			while (ring.length && (ring[0].t < now - TREND_MS || ring.length > TREND_MAX))
				ring.shift();
		});
		Object.keys(page.trend).forEach(function (id) {
			if (!status[id])
				delete page.trend[id];
		});
	}

	function svg(tag, attrs) {
		var e = document.createElementNS(SVG_NS, tag);

		Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
		return e;
	}

	/* An empty sparkline: the polyline's points and the title change. */
	function sparkline(name, what) {
		var s = svg("svg", { "class": "spark", width: String(SPARK_W), height: String(SPARK_H),
			viewBox: "0 0 " + SPARK_W + " " + SPARK_H, role: "img", "data-field": name,
			"data-points": "0", "aria-label": what + " over the last 15 minutes" });
		var title = svg("title");

		title.textContent = what + ": no samples yet";
		s.appendChild(title);
		s.appendChild(svg("polygon", { "class": "area", points: "" }));
		s.appendChild(svg("polyline", { "class": "line", points: "" }));
		s.setAttribute("data-what", what);
		return s;
	}

	/* Draws one series of a job's ring: x is time, newest at the right,
	 * over the time the page has samples for (at least 30 s, at most the
	 * 15-minute window, so a page opened a minute ago shows a trend, not a
	 * sliver); y scales from 0 to the largest value shown.  A sample without
	 * a value (lag while the job does not run) is left out. */
	function drawSpark(s, ring, key) {
		var now = Date.now();
		var pts = [], vals = [];
		var max = 0;
		var span = Math.min(TREND_MS, Math.max(30000, ring.length ? now - ring[0].t : 0));

		ring.forEach(function (p) {
			if (typeof p[key] === "number" && isFinite(p[key])) {
				vals.push(p);
				max = Math.max(max, p[key]);
			}
		});
		vals.forEach(function (p) {
			var x = SPARK_W - (now - p.t) / span * SPARK_W;
			var y = SPARK_H - 2 - (max > 0 ? p[key] / max * (SPARK_H - 4) : 0);

			pts.push(x.toFixed(1) + "," + y.toFixed(1));
		});
		s.querySelector("polyline").setAttribute("points", pts.join(" "));
		/* The area under the line, closed along the bottom edge. */
		s.querySelector("polygon").setAttribute("points", pts.length < 2 ? "" : pts.join(" ") + " " +
			pts[pts.length - 1].split(",")[0] + "," + SPARK_H + " " + pts[0].split(",")[0] + "," + SPARK_H);
		s.setAttribute("data-points", String(pts.length));
		s.setAttribute("data-max", String(max));
		s.querySelector("title").textContent = s.getAttribute("data-what") + ", last " +
			Math.max(1, Math.round((now - (vals.length ? vals[0].t : now)) / 60000)) + " min: " +
			(vals.length ? "max " + num(max) + ", now " + num(vals[vals.length - 1][key])
				: "no samples while the job ran");
	}

	function drawTrend(tr, id) {
		var ring = page.trend[id] || [];

		drawSpark(field(tr, "rps_trend"), ring, "rps");
		drawSpark(field(tr, "lag_trend"), ring, "lag");
	}

	function sourceName(id) {
		for (var i = 0; i < page.sources.length; i++)
			if (page.sources[i].id === id)
				return page.sources[i].name;
		return id === undefined || id === null ? "" : "#" + id;
	}

	function cell(field, cls) {
		var td = el("td", { "data-field": field });

		if (cls)
			td.className = cls;
		return td;
	}

	/* A job's row, built once; update fills it (keeps an open lag detail). */
	function jobRow(id) {
		var tr = el("tr", { "data-job-id": String(id), id: "job-" + id });
		var badge = el("span", { "class": "badge", "data-field": "state" });
		var stateTd = el("td");
		var tasksTd = el("td");
		var lagTd = el("td", { "class": "num" });
		var rpsTd = el("td", { "class": "num" });
		var nameTd = el("td");
		var open = el("button", { type: "button", "class": "link", "data-field": "name",
			"data-action": "open" });
		var details = el("details", { "data-field": "lag_detail" });
		var summary = el("summary", { "data-field": "lag", title: "lag per partition" });
		var actions = el("td", { "class": "actions" });
		var start = el("button", { type: "button", "data-action": "start" }, "Start");
		var stop = el("button", { type: "button", "data-action": "stop" }, "Stop");

		tr.appendChild(cell("id", "num"));
		open.addEventListener("click", function () { openJob(id); });
		nameTd.appendChild(open);
		tr.appendChild(nameTd);
		tr.appendChild(cell("source"));
		tr.appendChild(cell("flow", "flow"));
		stateTd.appendChild(badge);
		tr.appendChild(stateTd);
		tasksTd.appendChild(el("ul", { "class": "tasks", "data-field": "tasks" }));
		tr.appendChild(tasksTd);
		rpsTd.appendChild(el("div", { "data-field": "rows_per_second" }));
		rpsTd.appendChild(sparkline("rps_trend", "rows/s"));
		tr.appendChild(rpsTd);
		details.appendChild(summary);
		details.appendChild(el("ul", { "class": "partitions", "data-field": "lag_partitions" }));
		details.appendChild(el("p", { "class": "note", "data-field": "lag_updated_at" }));
		lagTd.appendChild(details);
		lagTd.appendChild(el("div", { "class": "note age", "data-field": "lag_age" }));
		lagTd.appendChild(sparkline("lag_trend", "lag"));
		tr.appendChild(lagTd);
		tr.appendChild(cell("last_batch", "age"));
		tr.appendChild(cell("rows_written", "num"));
		tr.appendChild(cell("rows_rejected", "num"));
		tr.appendChild(cell("restarts", "num"));
		tr.appendChild(cell("last_error", "err"));
		start.addEventListener("click", function () { jobAction(id, "start"); });
		stop.addEventListener("click", function () { jobAction(id, "stop"); });
		actions.appendChild(start);
		actions.appendChild(stop);
		actions.appendChild(el("div", { "class": "action-message", "data-field": "action_message",
			role: "status" }));
		tr.appendChild(actions);
		return tr;
	}

	function field(tr, name) {
		return tr.querySelector('[data-field="' + name + '"]');
	}

	function setText(tr, name, text) {
		var e = field(tr, name);

		if (e.textContent !== text)
			e.textContent = text;
	}

	/* The lag a job has now: its worker's last report while a worker runs;
	 * null for a job that does not run (its last report says where it
	 * stopped, not how far behind it is now). */
	function liveLag(st) {
		var lag = st.lag || null;
		var total = lag ? lag.total : null;

		if (!isLive(st) || total === null || total === undefined)
			return null;
		return total;
	}

	function isLive(st) {
		return st.state === "running" || st.state === "degraded";
	}

	function updateLag(tr, st) {
		var lag = st.lag || null;
		var total = liveLag(st);
		var summary = field(tr, "lag");
		var list = field(tr, "lag_partitions");
		var parts = lag && Array.isArray(lag.partitions) ? lag.partitions : [];
		var when = lag && lag.updated_at ? timeOf(lag.updated_at) : "";
		var live = isLive(st);

		summary.textContent = total === null ? "\u2014" : num(total);
		summary.setAttribute("data-value", total === null ? "" : String(total));
		summary.title = live ? "lag per partition" : "the job does not run: no current lag";
		field(tr, "lag_detail").classList.toggle("stale", !live && when !== "");
		clear(list);
		parts.forEach(function (p) {
			var li = el("li", { "data-partition": String(p.partition) });

			li.textContent = "partition " + p.partition + ": " +
				(!live ? "\u2014" : p.lag === null || p.lag === undefined ? "unknown" : num(p.lag));
			list.appendChild(li);
		});
		if (!parts.length)
			list.appendChild(el("li", null, "no lag report yet"));
		field(tr, "lag_updated_at").textContent = !when ? "" : live ? "reported " + when
			: "last reported " + when + ", before the job stopped";
		setText(tr, "lag_age", live && lag && lag.updated_at ? ago(lag.updated_at) : "");
		field(tr, "lag_age").title = live && lag && lag.updated_at ? "age of the lag figure" : "";
	}

	/* One line per task: its state, pid and the partitions it owns now. */
	function updateTasks(tr, st) {
		var list = field(tr, "tasks");
		var tasks = Array.isArray(st.tasks) ? st.tasks : [];

		clear(list);
		tasks.forEach(function (t) {
			var li = el("li", { "data-task": String(t.task), "data-state": t.state || "" });
			var parts = Array.isArray(t.partitions) ? t.partitions : [];

			li.appendChild(el("span", { "class": "badge " + (STATE_CLASS[t.state] || "idle") },
				"#" + t.task + " " + (t.state || "")));
			li.appendChild(el("span", { "data-field": "task_partitions", "data-partitions": parts.join(",") },
				" partitions " + (parts.length ? parts.join(", ") : "\u2013")));
			li.title = (t.pid ? "pid " + t.pid : "no worker") + ", " + num(t.restarts || 0) + " restarts" +
				(t.last_error ? ", last error: " + t.last_error : "");
			list.appendChild(li);
		});
	}

	function updateJob(tr, st) {
		var badge = field(tr, "state");
		var job = page.jobs[st.id] || {};
		var desired = st.desired_state;
		var busy = !!page.pending[st.id];
		var err = st.last_error || "";

		setText(tr, "id", String(st.id));
		setText(tr, "name", st.name || "");
		field(tr, "name").setAttribute("aria-label", "Open job " + (st.name || st.id));
		setText(tr, "source", sourceName(job.source_id));
		setText(tr, "flow", (job.topic || sourceTopic(job.source_id) || "?") + " \u2192 " +
			(job.table || "?"));
		setText(tr, "last_batch", st.last_batch_at ? ago(st.last_batch_at) : "none yet");
		field(tr, "last_batch").title = st.last_batch_at ? "last batch at " + st.last_batch_at
			: "no batch since the controller started";
		setText(tr, "state", st.state || "");
		badge.className = "badge " + (STATE_CLASS[st.state] || "idle");
		badge.title = "wanted: " + (desired || "?");
		setText(tr, "rows_per_second", isLive(st) ? rate(st.rows_per_second) : rate(0));
		drawTrend(tr, st.id);
		updateLag(tr, st);
		updateTasks(tr, st);
		setText(tr, "rows_written", num(st.rows_written));
		setText(tr, "rows_rejected", num(st.rows_rejected));
		setText(tr, "restarts", num(st.restarts));
		setText(tr, "last_error", err);
		field(tr, "last_error").title = st.last_exit ? "last exit: " + st.last_exit : "";
		tr.querySelector('[data-action="start"]').setAttribute("aria-label",
			"Start job " + (st.name || st.id));
		tr.querySelector('[data-action="stop"]').setAttribute("aria-label",
			"Stop job " + (st.name || st.id));
		tr.querySelector('[data-action="start"]').disabled = busy ||
			(desired === "running" && st.state !== "failed");
		tr.querySelector('[data-action="stop"]').disabled = busy ||
			(desired === "stopped" && (st.state === "stopped" || st.state === "failed"));
	}

	function renderJobs() {
		var body = $("jobs-body");
		var ids = Object.keys(page.status).map(Number).sort(function (a, b) { return a - b; });
		var rows = {};
		var before = null;

		Array.prototype.forEach.call(body.querySelectorAll("tr[data-job-id]"), function (tr) {
			rows[tr.getAttribute("data-job-id")] = tr;
		});
		/* In id order, reusing each job's row; rows of deleted jobs go. */
		for (var i = ids.length - 1; i >= 0; i--) {
			var tr = rows[ids[i]] || jobRow(ids[i]);

			delete rows[ids[i]];
			updateJob(tr, page.status[ids[i]]);
			if (tr.nextSibling !== before || tr.parentNode !== body)
				body.insertBefore(tr, before);
			before = tr;
		}
		Object.keys(rows).forEach(function (k) { body.removeChild(rows[k]); });
		$("jobs-count").textContent = String(ids.length);
		$("jobs-empty").hidden = ids.length !== 0;
		$("jobs-table").hidden = ids.length === 0;
	}

	function jobAction(id, verb) {
		var tr = $("job-" + id);
		var msg = tr ? field(tr, "action_message") : null;

		page.pending[id] = true;
		if (tr && page.status[id])
			updateJob(tr, page.status[id]);
		if (msg)
			msg.textContent = verb === "start" ? "starting\u2026" : "stopping\u2026";
		api("POST", "/jobs/" + id + "/" + verb).then(function (st) {
			if (st && typeof st === "object" && page.status[id])
				Object.keys(st).forEach(function (k) { page.status[id][k] = st[k]; });
			if (msg)
				msg.textContent = "";
		}, function (e) {
			if (msg)
				msg.textContent = e.message + (e.status ? " (HTTP " + e.status + ")" : "");
		}).then(function () {
			delete page.pending[id];
			var row = $("job-" + id);

			if (row && page.status[id])
				updateJob(row, page.status[id]);
			refreshSoon();
		});
	}

	/* -------------------------------------------------------- job view */

	function viewMessage(text, cls) {
		var m = $("job-view-message");

		m.textContent = text;
		m.className = cls || "";
	}

	function failText(e) {
		return e.message + (e.status ? " (HTTP " + e.status + ")" : "");
	}

	/* Opens one job's view (its name was clicked): the parts that need the
	 * worker's tools (offsets, rejected rows) and the YAML load now; tasks
	 * follow each poll. */
	function openJob(id) {
		page.view = { id: id, rejected: null, state: null };
		setHash("#job=" + id);
		$("job-view").hidden = false;
		$("job-delete-confirm").hidden = true;
		$("job-view").setAttribute("data-job-id", String(id));
		viewMessage("", "");
		clear($("job-tasks-body"));
		clear($("job-offsets-body"));
		clear($("job-rejects-body"));
		$("job-view-yaml").textContent = "loading\u2026";
		$("job-offsets-note").textContent = "loading\u2026";
		$("job-rejects-note").textContent = "loading\u2026";
		updateView();
		loadYaml(id);
		loadOffsets(id);
		loadRejects(id);
		$("job-view").scrollIntoView({ block: "start" });
		$("job-view-close").focus();
	}

	/* The open view is in the address (#job=ID), so it can be linked and
	 * survives a reload. */
	function setHash(h) {
		if (window.location.hash !== h && window.history && window.history.replaceState)
			window.history.replaceState(null, "", h || window.location.pathname + window.location.search);
	}

	function hashJob() {
		var m = /^#job=(\d+)$/.exec(window.location.hash || "");

		return m ? Number(m[1]) : null;
	}

	function closeJob() {
		page.view = null;
		setHash("");
		$("job-view").hidden = true;
		$("job-view").removeAttribute("data-job-id");
	}

	function viewing(id) {
		return page.view !== null && page.view.id === id;
	}

	function loadYaml(id) {
		api("GET", "/jobs/" + id + "/config", undefined, true).then(function (yaml) {
			if (viewing(id))
				$("job-view-yaml").textContent = yaml;
		}, function (e) {
			if (viewing(id))
				$("job-view-yaml").textContent = "The YAML cannot be shown: " + failText(e);
		});
	}

	function loadOffsets(id) {
		api("GET", "/jobs/" + id + "/offsets").then(function (r) {
			var body = $("job-offsets-body");
			var parts = r && Array.isArray(r.partitions) ? r.partitions : [];

			if (!viewing(id))
				return;
			clear(body);
			parts.forEach(function (p) {
				var tr = el("tr", { "data-partition": String(p.partition) });

				tr.appendChild(el("td", { "class": "num", "data-field": "partition" }, p.partition));
				tr.appendChild(el("td", { "class": "num", "data-field": "stored_offset",
					"data-value": p.stored_offset === null ? "" : String(p.stored_offset) },
					p.stored_offset === null ? "none (FALLBACK_OFFSET)" : num(p.stored_offset)));
				tr.appendChild(el("td", { "class": "num", "data-field": "low_watermark" },
					num(p.low_watermark)));
				tr.appendChild(el("td", { "class": "num", "data-field": "high_watermark" },
					num(p.high_watermark)));
				tr.appendChild(el("td", { "class": "num", "data-field": "lag" },
					p.lag === null ? "\u2014" : num(p.lag)));
				body.appendChild(tr);
			});
			$("job-offsets-note").textContent = (parts.length ? "" : "No partitions. ") +
				"Read " + new Date().toLocaleTimeString("en-GB") + " from the job's progress table " +
				"and the brokers; total lag " + num(r ? r.total_lag : null) + ".";
		}, function (e) {
			if (viewing(id))
				$("job-offsets-note").textContent = "Offsets cannot be read: " + failText(e);
		});
	}

	/* A payload as text for the preview: the text itself, or a note with the
	 * size of a binary one; cut at PREVIEW_MAX characters. */
	function preview(text, b64) {
		if (typeof text === "string")
			return text.length > PREVIEW_MAX ? text.slice(0, PREVIEW_MAX) + "\u2026" : text;
		if (typeof b64 === "string")
			return "binary, " + Math.floor(b64.length * 3 / 4) + " bytes (base64 " +
				b64.slice(0, 40) + (b64.length > 40 ? "\u2026" : "") + ")";
		return "null";
	}

	function loadRejects(id) {
		api("GET", "/jobs/" + id + "/errors?page=1&page_size=" + REJECTS_SHOWN).then(function (r) {
			var body = $("job-rejects-body");
			var items = r && Array.isArray(r.items) ? r.items : [];

			if (!viewing(id))
				return;
			clear(body);
			items.forEach(function (x) {
				var tr = el("tr", { "data-error-id": String(x.id) });

				tr.appendChild(el("td", { "data-field": "created_at", title: x.created_at || "" },
					ago(x.created_at)));
				tr.appendChild(el("td", { "class": "num", "data-field": "partition" }, x.partition));
				tr.appendChild(el("td", { "class": "num", "data-field": "offset" }, x.offset));
				tr.appendChild(el("td", { "class": "err", "data-field": "error" }, x.error));
				tr.appendChild(el("td", { "class": "payload", "data-field": "payload" },
					preview(x.value, x.value_base64)));
				body.appendChild(tr);
			});
			$("job-rejects-count").textContent = String(r ? r.total : 0);
			$("job-rejects-note").textContent = !items.length ? "No rejected rows." :
				"The newest " + items.length + " of " + num(r.total) +
				" in the error table (GET /api/v1/jobs/" + id + "/errors).";
		}, function (e) {
			if (viewing(id))
				$("job-rejects-note").textContent = "Rejected rows cannot be read: " + failText(e);
		});
	}

	/* Each poll: the open job's summary, tasks and buttons; offsets and
	 * rejected rows again when the job's state or rejected count moved. */
	function updateView() {
		var v = page.view;
		var st = v ? page.status[v.id] : null;
		var job, body, stopped;

		if (!v)
			return;
		if (!st) {
			closeJob();
			return;
		}
		job = page.jobs[v.id] || {};
		$("job-view-title").textContent = "Job " + (st.name || "") + " (#" + st.id + ")";
		$("job-view-summary").textContent = (st.state || "?") + " (wanted " +
			(st.desired_state || "?") + ") \u00b7 " + (job.topic || sourceTopic(job.source_id) || "?") +
			" \u2192 " + (job.table || "?") + " \u00b7 last batch " +
			(st.last_batch_at ? ago(st.last_batch_at) : "none yet") + " \u00b7 lag " +
			(liveLag(st) === null ? "\u2014" : num(liveLag(st)));
		body = $("job-tasks-body");
		clear(body);
		(Array.isArray(st.tasks) ? st.tasks : []).forEach(function (t) {
			var tr = el("tr", { "data-task": String(t.task) });
			var parts = Array.isArray(t.partitions) ? t.partitions : [];

			tr.appendChild(el("td", { "class": "num" }, t.task));
			tr.appendChild(el("td", { "data-field": "state" }, t.state || ""));
			tr.appendChild(el("td", null, t.pid ? t.pid : "\u2014"));
			tr.appendChild(el("td", { "data-field": "partitions" }, parts.length ? parts.join(", ") : "\u2014"));
			tr.appendChild(el("td", { "class": "num" }, isLive(st) ? rate(t.rows_per_second) : rate(0)));
			tr.appendChild(el("td", { "class": "num" }, isLive(st) && typeof t.lag === "number"
				? num(t.lag) : "\u2014"));
			tr.appendChild(el("td", { "class": "num" }, num(t.restarts || 0)));
			tr.appendChild(el("td", { "class": "err" }, t.last_error || ""));
			body.appendChild(tr);
		});
		stopped = st.state === "failed" || (st.state === "stopped" && st.desired_state === "stopped");
		$("job-reset").disabled = !stopped;
		$("job-reset").title = stopped ? "" : "stop the job first";
		$("job-delete").disabled = !stopped;
		$("job-delete").title = stopped ? "" : "stop the job first";
		if (v.state !== null && (v.state !== st.state || v.rejected !== st.rows_rejected)) {
			loadOffsets(v.id);
			loadRejects(v.id);
		}
		v.state = st.state;
		v.rejected = st.rows_rejected;
	}

	function onReset() {
		var v = page.view;
		var to = $("job-reset-to").value;

		if (!v)
			return;
		$("job-reset").disabled = true;
		viewMessage("resetting offsets to " + to + "\u2026", "");
		api("POST", "/jobs/" + v.id + "/offsets/reset", { to: to }).then(function (r) {
			var parts = r && Array.isArray(r.partitions) ? r.partitions : [];

			viewMessage("Offsets reset to " + to + ": " + parts.map(function (p) {
				return "partition " + p.partition + " \u2192 " + num(p.offset);
			}).join(", ") + (r && r.kafka_committed === false && r.warning ? " (" + r.warning + ")" : "") +
				".", "ok");
			loadOffsets(v.id);
		}, function (e) {
			viewMessage("Offsets not reset: " + failText(e), "bad");
		}).then(function () {
			updateView();
		});
	}

	function onDelete() {
		var st = page.view ? page.status[page.view.id] : null;

		if (!st)
			return;
		$("job-delete-question").textContent = "Delete job " + (st.name || "") + " (#" + st.id +
			")? Its definition and state go; rows already written and its error table stay.";
		$("job-delete-confirm").hidden = false;
		$("job-delete-no").focus();
	}

	function onDeleteConfirmed() {
		var id = page.view ? page.view.id : null;

		if (id === null)
			return;
		$("job-delete-confirm").hidden = true;
		viewMessage("deleting\u2026", "");
		api("DELETE", "/jobs/" + id).then(function () {
			if (viewing(id))
				closeJob();
			delete page.status[id];
			renderJobs();
			statusLine("Deleted job #" + id + ".", "ok");
			refreshSoon();
		}, function (e) {
			viewMessage("Not deleted: " + failText(e), "bad");
		});
	}

	function toggleNewJob() {
		var sec = $("new-job");
		var show = sec.hidden;

		sec.hidden = !show;
		$("new-job-toggle").setAttribute("aria-expanded", String(show));
		$("new-job-toggle").textContent = show ? "Hide new job" : "New job";
		if (show) {
			renderGutter();
			$("job-name").focus();
		}
	}

	/* -------------------------------------------------- services, sources */

	function renderTable(bodyId, countId, items, columns) {
		var body = $(bodyId);

		clear(body);
		items.forEach(function (item) {
			var tr = el("tr", { "data-id": String(item.id) });

			columns.forEach(function (c) {
				var td = el("td", { "data-field": c.field }, c.value(item));

				if (c.num)
					td.className = "num";
				tr.appendChild(td);
			});
			body.appendChild(tr);
		});
		$(countId).textContent = String(items.length);
	}

	function renderServices() {
		var wanted = {};

		Object.keys(page.status).forEach(function (id) {
			var job = page.jobs[id];
			var src = null;

			if (!job || page.status[id].desired_state !== "running")
				return;
			page.sources.forEach(function (s) {
				if (s.id === job.source_id)
					src = s;
			});
			if (src)
				wanted[src.service_id] = (wanted[src.service_id] || 0) + 1;
		});
		renderTable("services-body", "services-count", page.services, [
			{ field: "id", num: true, value: function (s) { return s.id; } },
			{ field: "name", value: function (s) { return s.name; } },
			{ field: "jobs_wanted", num: true, value: function (s) { return wanted[s.id] || 0; } },
			{ field: "spec_cu", num: true, value: function (s) { return s.spec_cu; } },
			{ field: "database", value: function (s) { return s.database_host + ":" + s.database_port; } },
			{ field: "status", value: function (s) { return s.status; } },
			{ field: "description", value: function (s) { return s.description; } }
		]);
	}

	function renderSources() {
		var names = {};

		page.services.forEach(function (s) { names[s.id] = s.name; });
		renderTable("sources-body", "sources-count", page.sources, [
			{ field: "id", num: true, value: function (s) { return s.id; } },
			{ field: "name", value: function (s) { return s.name; } },
			{ field: "service", value: function (s) { return names[s.service_id] || "#" + s.service_id; } },
			{ field: "brokers", value: function (s) { return s.brokers; } },
			{ field: "topic", value: function (s) { return s.topic; } },
			{ field: "format", value: function (s) { return s.format; } },
			{ field: "status", value: function (s) { return s.status; } },
			{ field: "description", value: function (s) { return s.description; } }
		]);
		renderSourceSelect();
	}

	/* The form's source choice, keeping the user's selection. */
	function renderSourceSelect() {
		var sel = $("job-source");
		var keep = sel.value;

		clear(sel);
		sel.appendChild(el("option", { value: "" }, page.sources.length ? "choose a source"
			: "no sources yet: POST /api/v1/sources"));
		page.sources.forEach(function (s) {
			var o = el("option", { value: String(s.id) }, s.name + " (" + s.topic + ", " + s.format + ")");

			sel.appendChild(o);
		});
		sel.value = keep;
		if (sel.value !== keep)
			sel.value = "";
	}

	/* -------------------------------------------------------- job form */

	/* The line numbers beside the YAML; lines with a problem are marked. */
	function renderGutter(bad) {
		var gutter = $("job-config-gutter");
		var n = $("job-config").value.split("\n").length;

		bad = bad || page.badLines || {};
		clear(gutter);
		for (var i = 1; i <= n; i++) {
			var span = el("span", { "data-line": String(i) }, String(i));

			if (bad[i]) {
				span.className = "bad";
				span.title = bad[i];
			}
			gutter.appendChild(span);
			gutter.appendChild(document.createTextNode("\n"));
		}
		gutter.scrollTop = $("job-config").scrollTop;
	}

	function selectLine(line) {
		var ta = $("job-config");
		var lines = ta.value.split("\n");
		var start = 0;

		if (line < 1 || line > lines.length)
			return;
		for (var i = 0; i < line - 1; i++)
			start += lines[i].length + 1;
		ta.focus();
		ta.setSelectionRange(start, start + lines[line - 1].length);
	}

	function showProblems(details) {
		var list = $("job-errors");
		var bad = {};

		clear(list);
		details.forEach(function (d) {
			var li = el("li", { "class": "problem" });
			var where = d.line ? "line " + d.line : "";

			if (d.line) {
				li.setAttribute("data-line", String(d.line));
				bad[d.line] = (bad[d.line] ? bad[d.line] + "; " : "") + d.message;
				li.addEventListener("click", function () { selectLine(d.line); });
			}
			li.appendChild(el("span", { "class": "where" }, where));
			if (d.field)
				li.appendChild(el("code", { "class": "field" }, d.field));
			li.appendChild(el("span", { "class": "message" }, d.message || ""));
			list.appendChild(li);
		});
		page.badLines = bad;
		renderGutter(bad);
		scrollToLine(Math.min.apply(null, Object.keys(bad).map(Number)));
	}

	/* Brings a line of the YAML into view (a few lines of context above). */
	function scrollToLine(line) {
		var ta = $("job-config");
		var lh = parseFloat(window.getComputedStyle(ta).lineHeight) || 18;

		if (!isFinite(line) || line < 1)
			return;
		ta.scrollTop = Math.max(0, line - 4) * lh;
		$("job-config-gutter").scrollTop = ta.scrollTop;
	}

	function formMessage(text, cls) {
		var m = $("job-form-message");

		m.textContent = text;
		m.className = cls || "";
	}

	function onSubmit(ev) {
		var name = $("job-name").value.trim();
		var source = $("job-source").value;
		var body;

		ev.preventDefault();
		if (!name || !source) {
			formMessage(!name ? "Give the job a name." : "Choose a source.", "bad");
			(!name ? $("job-name") : $("job-source")).focus();
			return;
		}
		body = { name: name, source_id: Number(source), mode: "professional",
			config: $("job-config").value };
		$("job-submit").disabled = true;
		formMessage("creating\u2026", "");
		api("POST", "/jobs", body).then(function (job) {
			showProblems([]);
			formMessage("Created job " + job.id + " (" + job.name +
				"), stopped: start it in the list above.", "ok");
			$("job-name").value = "";
			$("job-config").value = "";
			renderGutter({});
			refreshSoon();
		}, function (e) {
			var err = e.body && e.body.error ? e.body.error : null;
			var details = err && Array.isArray(err.details) ? err.details : [];

			if (!details.length && err && e.status === 422)
				details = [{ field: err.field, line: null, message: err.message }];
			showProblems(details);
			formMessage(e.status === 422 ? "The job was not created: " + details.length +
				(details.length === 1 ? " problem" : " problems") +
				(err && err.details_truncated ? " (more not shown)" : "") + "."
				: "The job was not created: " + e.message + (e.status ? " (HTTP " + e.status + ")" : ""),
				"bad");
		}).then(function () {
			$("job-submit").disabled = false;
		});
	}

	/* -------------------------------------------------------- refresh */

	function statusLine(text, cls) {
		var s = $("status-line");

		s.textContent = text;
		s.className = "note " + (cls || "");
	}

	/* The job list carries each job's whole definition; the page needs only
	 * its source, so it reads the list again only when a job it does not know
	 * appears, and every JOBS_EVERY polls (a stopped job's source can change). */
	function jobsFor(status) {
		var known = status.every(function (st) { return page.jobs[st.id] !== undefined; });

		if (known && page.refreshes % JOBS_EVERY !== 0)
			return Promise.resolve(page.jobs);
		return listAll("/jobs").then(function (items) {
			var jobs = {};

			items.forEach(function (j) {
				var flow = jobFlow(j);

				jobs[j.id] = { source_id: j.source_id, mode: j.mode, topic: flow.topic,
					table: flow.table };
			});
			/* Past the list's cap: known, without a source, until the next full read. */
			status.forEach(function (st) {
				if (jobs[st.id] === undefined)
					jobs[st.id] = { source_id: null, mode: null, topic: null, table: null };
			});
			return jobs;
		});
	}

	function refresh() {
		var got;

		page.timer = null;
		return Promise.all([listAll("/services"), listAll("/sources"),
			api("GET", "/jobs/status")]).then(function (r) {
			got = r;
			return jobsFor(r[2] && Array.isArray(r[2].items) ? r[2].items : []);
		}).then(function (jobs) {
			var status = {};

			page.services = got[0];
			page.sources = got[1];
			(got[2] && Array.isArray(got[2].items) ? got[2].items : []).forEach(function (st) {
				status[st.id] = st;
			});
			page.jobs = jobs;
			page.status = status;
			page.authNeeded = false;
			$("auth").hidden = true;
			$("app").hidden = false;
			$("token-forget").hidden = token() === "";
			sampleTrends(status);
			renderSources();
			renderServices();
			renderJobs();
			if (page.refreshes === 0 && page.view === null && status[hashJob()])
				openJob(hashJob());
			updateView();
			page.refreshes++;
			document.documentElement.setAttribute("data-refreshes", String(page.refreshes));
			statusLine("Updated " + new Date().toLocaleTimeString("en-GB") +
				" \u00b7 refreshes every " + POLL_MS / 1000 + " s \u00b7 REST API under " + API, "");
		}, function (e) {
			if (e.status === 401)
				statusLine("The API needs a token.", "bad");
			else
				statusLine("Last refresh failed: " + e.message +
					(e.status ? " (HTTP " + e.status + ")" : "") + "; retrying.", "bad");
		}).then(schedule);
	}

	function schedule() {
		if (page.timer !== null || page.authNeeded)
			return;
		page.timer = window.setTimeout(refresh, POLL_MS);
	}

	function refreshNow() {
		if (page.timer !== null) {
			window.clearTimeout(page.timer);
			page.timer = null;
		}
		refresh();
	}

	/* After a change: at once, without waiting for the next poll. */
	function refreshSoon() {
		if (page.timer !== null) {
			window.clearTimeout(page.timer);
			page.timer = window.setTimeout(refresh, 300);
		}
	}

	function init() {
		var ta = $("job-config");

		$("auth-form").addEventListener("submit", onToken);
		$("token-forget").addEventListener("click", onForget);
		$("job-form").addEventListener("submit", onSubmit);
		$("new-job-toggle").addEventListener("click", toggleNewJob);
		$("job-view-close").addEventListener("click", closeJob);
		$("job-view").addEventListener("keydown", function (ev) {
			if (ev.key === "Escape")
				closeJob();
		});
		$("job-view-reload").addEventListener("click", function () {
			if (page.view) {
				loadOffsets(page.view.id);
				loadRejects(page.view.id);
			}
		});
		$("job-reset").addEventListener("click", onReset);
		$("job-delete").addEventListener("click", onDelete);
		$("job-delete-yes").addEventListener("click", onDeleteConfirmed);
		$("job-delete-no").addEventListener("click", function () {
			$("job-delete-confirm").hidden = true;
		});
		ta.addEventListener("input", function () { renderGutter(); });
		ta.addEventListener("scroll", function () { $("job-config-gutter").scrollTop = ta.scrollTop; });
		renderGutter({});
		statusLine("Loading\u2026", "");
		refresh();
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", init);
	else
		init();
}());
