// vmemu's run timeline: lanes per task drawn on a canvas, zoom/pan, hover, links to the
// scenario source and the interleaving table. Data: the JSON in #vmemu-data (see
// vmemu/_viz/html.py for its layout). No network, no dependencies.
(function () {
  "use strict";
  var api = { ready: false };
  window.vmemu = api;
  setupCopy();
  var el = document.getElementById("vmemu-data");
  var D = el ? JSON.parse(el.textContent) : {};
  if (!D.lanes) { api.ready = true; return; }

  var P = D.P, END = Math.max(D.end, P), S = D.strs;
  // Tasks stuck at the verdict stay blocked forever: their last span runs on past the
  // end of the run, into room the fitted view leaves for it.
  var ENDV = D.lanes.some(function (l) { return l[2]; }) ? END + Math.max(1.5 * P, END * 0.06) : END;
  var STATE_COL = { running: "#2e7d32", runnable: "#c5e1a5", blocked: "#d32f2f", idle: "#f4c7d0",
    sleeping: "#90caf9", io: "#7e57c2", delay: "#4fc3f7", done: null };
  var STATE_RANK = { blocked: 0, running: 1, io: 2, sleeping: 3, delay: 4, idle: 5, runnable: 6, done: 7 };
  var ACT_COL = { reclaim: "#fb8c00", kswapd: "#ffb74d", writeback: "#6d4c41" };
  var CAT_COL = { fault: "#e53935", error: "#ad1457", block: "#b71c1c", wake: "#1e88e5",
    lock: "#546e7a", memory: "#ef6c00", verdict: "#000000", exit: "#90a4ae", other: "#78909c" };
  var LOCK_COL = ["#5c6bc0", "#00897b", "#c0ca33", "#8e24aa", "#f4511e", "#3949ab", "#00acc1",
    "#7cb342", "#d81b60", "#6d4c41"];
  var STATE_H = 12, ACT_H = 5, HOLD_H = 5, PAD = 5, MARK_H = 5, MEM_H = 78;

  // ------------------------------------------------------------------ decode
  var lanes = D.lanes.map(function (l, i) {
    return { i: i, name: l[0], daemon: !!l[1], stuck: !!l[2], sp: [], ss: [], sl: [], sn: [],
      acts: [], holds: [], rows: 0, marks: [] };
  });
  D.st.forEach(function (flat, li) {
    var L = lanes[li], p = 0;
    for (var j = 0; j < flat.length; j += 4) {
      p += flat[j];
      L.sp.push(p); L.ss.push(D.states[flat[j + 1]]); L.sl.push(flat[j + 2]); L.sn.push(flat[j + 3]);
    }
  });
  (function () {
    var f = D.acts, p = 0;
    for (var j = 0; j < f.length; j += 6) {
      p += f[j + 1];
      lanes[f[j]].acts.push({ s: p, e: p + f[j + 2], kind: D.actkinds[f[j + 3]], label: S[f[j + 4]], line: f[j + 5] });
    }
    f = D.holds; p = 0;
    for (j = 0; j < f.length; j += 7) {
      p += f[j + 1];
      var L = lanes[f[j]];
      L.holds.push({ s: p, e: p + f[j + 2], lock: S[f[j + 3]], mode: S[f[j + 4]], line: f[j + 5], row: f[j + 6] });
      L.rows = Math.max(L.rows, f[j + 6] + 1);
    }
  })();
  var lockIndex = {};
  D.locks.forEach(function (n, i) { lockIndex[n] = i; });
  var NEV = D.ev.length / 3, evPos = new Float64Array(NEV), evRow = new Int32Array(NEV), evTick = new Float64Array(NEV);
  var globalMarks = [];
  (function () {
    var p = 0, t = 0;
    for (var i = 0; i < NEV; i++) {
      evRow[i] = D.ev[3 * i]; p += D.ev[3 * i + 1]; t += D.ev[3 * i + 2];
      evPos[i] = p; evTick[i] = t;
      var li = D.evrows[evRow[i]][0];
      if (li >= 0) lanes[li].marks.push(i); else globalMarks.push(i);
    }
  })();
  function evLane(i) { return D.evrows[evRow[i]][0]; }
  function evOp(i) { return S[D.evrows[evRow[i]][1]]; }
  function evArg(i) { return S[D.evrows[evRow[i]][2]]; }
  function evLine(i) { return D.evrows[evRow[i]][3]; }
  function evCat(i) { return D.cats[D.evrows[evRow[i]][4]]; }
  function evText(i) { var a = evArg(i); return a === "" ? evOp(i) : evOp(i) + " " + a; }
  var pre = [];
  (function () { var p = 0; for (var j = 0; j < D.pre.length; j += 3) { p += D.pre[j]; pre.push({ p: p, from: D.pre[j + 1], to: D.pre[j + 2] }); } })();
  lanes.forEach(function (L) { L.pre = []; });
  pre.forEach(function (x) { lanes[x.from].pre.push(x); });
  var flows = [];
  (function () { var p = 0; for (var j = 0; j < D.flows.length; j += 5) { p += D.flows[j + 1]; flows.push({ from: D.flows[j], fp: p, to: D.flows[j + 2], tp: p + D.flows[j + 3], ev: D.flows[j + 4] }); } })();
  var ticks = [];
  (function () { var p = 0, t = 0; for (var j = 0; j < D.ticks.length; j += 2) { p += D.ticks[j]; t += D.ticks[j + 1]; ticks.push([p, t]); } })();
  var mem = null;
  if (D.mem) {
    mem = D.mem; mem.fp = []; mem.fv = [];
    var p0 = 0;
    for (var j = 0; j < mem.free.length; j += 2) { p0 += mem.free[j]; mem.fp.push(p0); mem.fv.push(mem.free[j + 1]); }
  }

  // ------------------------------------------------------------------ layout
  // Lanes matching the task filter are laid out top to bottom; hidden ones take no room.
  var laneTop = [], shown = [], totalH = 0;
  var labels = document.getElementById("labels"), labelOf = {};
  Array.prototype.forEach.call(labels.querySelectorAll(".lane-label"), function (d) { labelOf[d.getAttribute("data-lane")] = d; });
  if (labelOf.mem) { var md = labelOf.mem; md.style.top = "0px"; md.style.height = MEM_H + "px"; md.style.lineHeight = "18px"; md.style.paddingTop = "4px"; }
  function layout(q) {
    var y = mem ? MEM_H : 0;
    laneTop = []; shown = [];
    lanes.forEach(function (L) {
      var d = labelOf[L.i];
      L.h = PAD + MARK_H + STATE_H + 2 + ACT_H + (L.rows ? 2 + L.rows * (HOLD_H + 1) : 0) + PAD;
      L.hidden = !!q && L.name.toLowerCase().indexOf(q) < 0;
      if (d) d.style.display = L.hidden ? "none" : "";
      if (L.hidden) return;
      L.top = y; y += L.h; laneTop.push(L.top); shown.push(L);
      if (d) { d.style.top = L.top + "px"; d.style.height = L.h + "px"; d.style.lineHeight = (L.h - 1) + "px"; }
    });
    totalH = Math.max(y, 20);
    labels.style.height = totalH + "px";
  }
  layout("");

  var cv = document.getElementById("tl"), ax = document.getElementById("axis");
  var ctx = cv.getContext("2d"), actx = ax.getContext("2d");
  var W = 600, DPR = window.devicePixelRatio || 1;
  var view = { x0: 0, scale: 1 };   // pos at the left edge; pixels per pos unit

  function resize() {
    W = Math.max(200, cv.parentNode.clientWidth);
    cv.width = Math.round(W * DPR); cv.height = Math.round(totalH * DPR);
    cv.style.width = W + "px"; cv.style.height = totalH + "px";
    ax.width = Math.round(W * DPR); ax.height = Math.round(34 * DPR);
    ax.style.width = W + "px"; ax.style.height = "34px";
  }
  function fit() { view.x0 = -ENDV * 0.01; view.scale = W / (ENDV * 1.02); }
  function X(p) { return (p - view.x0) * view.scale; }
  function Pos(x) { return view.x0 + x / view.scale; }
  function clampView() {
    var minScale = W / (ENDV * 1.5), maxScale = 200 / P * 4;
    view.scale = Math.min(maxScale, Math.max(minScale, view.scale));
    var span = W / view.scale;
    view.x0 = Math.min(ENDV + span * 0.5 - span, Math.max(-span * 0.5, view.x0));
    if (span > ENDV * 1.02) view.x0 = (ENDV - span) / 2;
  }
  function bsearch(arr, p) {   // last index with arr[i] <= p (or -1)
    var lo = 0, hi = arr.length - 1, r = -1;
    while (lo <= hi) { var m = (lo + hi) >> 1; if (arr[m] <= p) { r = m; lo = m + 1; } else hi = m - 1; }
    return r;
  }
  function firstAtOrAfter(idx, posOf, p) {
    var lo = 0, hi = idx.length;
    while (lo < hi) { var m = (lo + hi) >> 1; if (posOf(idx[m]) < p) lo = m + 1; else hi = m; }
    return lo;
  }
  function evP(i) { return evPos[i]; }

  // ------------------------------------------------------------------ drawing
  var raf = 0;
  function redraw() { if (!raf) raf = requestAnimationFrame(function () { raf = 0; draw(); }); }
  function draw() {
    ctx.setTransform(DPR, 0, 0, DPR, 0, 0); actx.setTransform(DPR, 0, 0, DPR, 0, 0);
    ctx.clearRect(0, 0, W, totalH); actx.clearRect(0, 0, W, 34);
    var a = Pos(0), b = Pos(W);
    drawAxis(a, b);
    if (mem) drawMem(a, b);
    shown.forEach(function (L) { drawLane(L, a, b); });
    drawPreempts(a, b);
    if ((b - a) / P < 3000) drawFlows(a, b);
    globalMarks.forEach(function (i) {
      var x = X(evPos[i]);
      if (x < -2 || x > W + 2) return;
      ctx.fillStyle = "rgba(0,0,0,0.75)"; ctx.fillRect(x - 1, 0, 2, totalH);
    });
    if (sel) {
      ctx.strokeStyle = "#1565c0"; ctx.lineWidth = 2;
      ctx.strokeRect(Math.max(-2, X(sel.s)) - 1, sel.y - 1, Math.max(3, Math.min(W + 4, X(sel.e)) - Math.max(-2, X(sel.s)) + 2), sel.h + 2);
    }
  }
  function niceStep(span, px) {
    var raw = span / Math.max(1, W / px), mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
    return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
  }
  function drawAxis(a, b) {
    var sa = a / P, sb = b / P, st = Math.max(1, niceStep(sb - sa, 90));
    actx.fillStyle = "#5b6570"; actx.font = "11px system-ui, sans-serif"; actx.textBaseline = "top";
    actx.strokeStyle = "#c4cad0"; actx.lineWidth = 1;
    for (var s = Math.ceil(Math.max(0, sa) / st) * st; s <= sb; s += st) {
      var x = Math.round(X(s * P)) + 0.5;
      actx.beginPath(); actx.moveTo(x, 0); actx.lineTo(x, 8); actx.stroke();
      actx.fillText("step " + s, x + 3, 1);
      ctx.fillStyle = "rgba(0,0,0,0.05)"; ctx.fillRect(x - 0.5, 0, 1, totalH);
    }
    // Virtual clock: a mark where the tick changed, labelled when there is room.
    actx.fillStyle = "#1565c0"; var lastX = -1e9;
    var i0 = Math.max(0, bsearch(tickPos, a));
    var lastMark = -1e9;
    for (var i = i0; i < ticks.length && ticks[i][0] <= b; i++) {
      var tx = X(ticks[i][0]);
      if (tx - lastMark >= 3) { actx.fillRect(tx, 20, 1, 14); lastMark = tx; }
      if (tx - lastX > 46) { actx.fillText("tick " + ticks[i][1], tx + 3, 20); lastX = tx; }
    }
  }
  var tickPos = ticks.map(function (t) { return t[0]; });
  function stateEnd(L, j) { return j + 1 < L.sp.length ? L.sp[j + 1] : L.stuck ? ENDV : END; }
  function drawLane(L, a, b) {
    var yS = L.top + PAD + MARK_H, yA = yS + STATE_H + 2, yH = yA + ACT_H + 2;
    ctx.fillStyle = "#eceff2"; ctx.fillRect(0, L.top, W, 1);
    // states, one pixel at a time when spans are thinner than that
    var j = Math.max(0, bsearch(L.sp, a)), bx = -1, best = null;
    for (; j < L.sp.length && L.sp[j] <= b; j++) {
      var st = L.ss[j], x1 = X(L.sp[j]), x2 = X(stateEnd(L, j));
      if (st === "done") { ctx.fillStyle = "#cfd8dc"; ctx.fillRect(x1, yS + STATE_H / 2, Math.max(0, Math.min(W, x2) - x1), 1); continue; }
      if (x2 - x1 >= 1) {
        if (best) { ctx.fillStyle = STATE_COL[best]; ctx.fillRect(bx, yS, 1, STATE_H); best = null; }
        ctx.fillStyle = STATE_COL[st]; ctx.fillRect(x1, yS, x2 - x1, STATE_H);
        if (st === "blocked" && x2 - x1 > 40) {
          ctx.save(); ctx.beginPath(); ctx.rect(x1, yS, x2 - x1, STATE_H); ctx.clip();
          ctx.fillStyle = "#fff"; ctx.font = "10px system-ui, sans-serif"; ctx.textBaseline = "middle";
          ctx.fillText(S[L.sl[j]], Math.max(x1, 0) + 3, yS + STATE_H / 2 + 0.5); ctx.restore();
        }
      } else {
        var px = Math.floor(x1);
        if (px !== bx) { if (best) { ctx.fillStyle = STATE_COL[best]; ctx.fillRect(bx, yS, 1, STATE_H); } bx = px; best = st; }
        else if (STATE_RANK[st] < STATE_RANK[best]) best = st;
      }
    }
    if (best) { ctx.fillStyle = STATE_COL[best]; ctx.fillRect(bx, yS, 1, STATE_H); }
    L.acts.forEach(function (A) {
      if (A.e < a || A.s > b) return;
      var x1 = X(A.s), x2 = Math.max(x1 + 2, X(A.e));
      ctx.fillStyle = ACT_COL[A.kind] || "#999"; ctx.fillRect(x1, yA, x2 - x1, ACT_H);
    });
    L.holds.forEach(function (H) {
      if (H.e < a || H.s > b) return;
      var x1 = X(H.s), x2 = Math.max(x1 + 2, X(H.e)), yy = yH + H.row * (HOLD_H + 1);
      ctx.fillStyle = LOCK_COL[lockIndex[H.lock] % LOCK_COL.length];
      ctx.globalAlpha = H.mode === "read_lock" ? 0.55 : 1; ctx.fillRect(x1, yy, x2 - x1, HOLD_H); ctx.globalAlpha = 1;
    });
    // event markers above the state bar
    var k = firstAtOrAfter(L.marks, evP, a), lastPx = -10, lastRank = 99;
    for (; k < L.marks.length; k++) {
      var i = L.marks[k], p = evPos[i];
      if (p > b) break;
      var cat = evCat(i), x = X(p), big = cat === "fault" || cat === "error";
      if (!big && Math.floor(x) === lastPx) continue;
      lastPx = Math.floor(x);
      ctx.fillStyle = CAT_COL[cat] || CAT_COL.other;
      if (big) {
        ctx.beginPath(); ctx.moveTo(x - 4, L.top + 1); ctx.lineTo(x + 4, L.top + 1); ctx.lineTo(x, L.top + PAD + MARK_H + 1); ctx.closePath(); ctx.fill();
      } else ctx.fillRect(x - 0.5, L.top + PAD, 1.5, MARK_H);
    }
  }
  function drawPreempts(a, b) {
    ctx.fillStyle = "#f9a825"; ctx.strokeStyle = "#6d4c00"; ctx.lineWidth = 0.8;
    var last = {};   // per lane: the last diamond drawn (one per 8 px at most)
    pre.forEach(function (x) {
      if (x.p < a || x.p > b || lanes[x.from].hidden) return;
      var L = lanes[x.from], cx = X(x.p), cy = L.top + PAD + MARK_H + STATE_H / 2;
      if (last[x.from] !== undefined && cx - last[x.from] < 8) return;
      last[x.from] = cx;
      ctx.beginPath(); ctx.moveTo(cx, cy - 5); ctx.lineTo(cx + 4, cy); ctx.lineTo(cx, cy + 5); ctx.lineTo(cx - 4, cy); ctx.closePath(); ctx.fill(); ctx.stroke();
    });
  }
  function drawFlows(a, b) {
    ctx.strokeStyle = "rgba(30,136,229,0.8)"; ctx.fillStyle = "rgba(30,136,229,0.9)"; ctx.lineWidth = 1.2;
    var fl = flows.filter(function (f) { return f.tp >= a && f.fp <= b && !lanes[f.from].hidden && !lanes[f.to].hidden; });
    // Too many arrows hide the lanes: then only those of the selected task.
    if (fl.length > 150) fl = fl.filter(function (f) { return sel && (f.from === sel.lane || f.to === sel.lane); });
    fl.forEach(function (f) {
      var x1 = X(f.fp), y1 = lanes[f.from].top + PAD + MARK_H + STATE_H / 2;
      var x2 = X(f.tp), y2 = lanes[f.to].top + PAD + MARK_H + STATE_H / 2;
      ctx.beginPath(); ctx.moveTo(x1, y1); ctx.bezierCurveTo(x1 + 20, y1, x2 - 20, y2, x2, y2); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(x2, y2); ctx.lineTo(x2 - 6, y2 - 3); ctx.lineTo(x2 - 6, y2 + 3); ctx.closePath(); ctx.fill();
    });
  }
  function drawMem(a, b) {
    var top = 8, h = MEM_H - 18, pages = Math.max(1, mem.pages);
    function Y(v) { return top + h - (v / pages) * h; }
    ctx.fillStyle = "#fafbfc"; ctx.fillRect(0, 0, W, MEM_H);
    // reclaim and kswapd activity of every task, as bands at the bottom
    lanes.forEach(function (L) {
      L.acts.forEach(function (A) {
        if (A.e < a || A.s > b || A.kind === "writeback") return;
        ctx.fillStyle = ACT_COL[A.kind]; ctx.globalAlpha = 0.45;
        ctx.fillRect(X(A.s), MEM_H - 8, Math.max(2, X(A.e) - X(A.s)), 6); ctx.globalAlpha = 1;
      });
    });
    var lastY = 1e9;
    [["min", "#c62828"], ["low", "#ef6c00"], ["high", "#2e7d32"]].forEach(function (w) {
      var yy = Math.round(Y(mem[w[0]])) + 0.5;
      ctx.strokeStyle = w[1]; ctx.setLineDash([4, 3]); ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(0, yy); ctx.lineTo(W, yy); ctx.stroke(); ctx.setLineDash([]);
      if (lastY - yy < 10) return;   // (the gutter names them all)
      ctx.fillStyle = w[1]; ctx.font = "10px system-ui, sans-serif"; ctx.textBaseline = "bottom";
      ctx.fillText(w[0] + " " + mem[w[0]], W - 46, yy - 1); lastY = yy;
    });
    if (!mem.fp.length) return;
    ctx.strokeStyle = "#1565c0"; ctx.lineWidth = 1.5; ctx.fillStyle = "rgba(21,101,192,0.12)";
    var j = Math.max(0, bsearch(mem.fp, a));
    ctx.beginPath();
    var x = Math.max(-1, X(mem.fp[j])), yv = Y(mem.fv[j]);
    ctx.moveTo(x, Y(0)); ctx.lineTo(x, yv);
    for (j = j + 1; j < mem.fp.length && mem.fp[j] <= b; j++) {
      x = X(mem.fp[j]); ctx.lineTo(x, yv); yv = Y(mem.fv[j]); ctx.lineTo(x, yv);
    }
    x = Math.min(W + 1, X(END)); ctx.lineTo(x, yv);
    ctx.stroke(); ctx.lineTo(x, Y(0)); ctx.closePath(); ctx.fill();
    ctx.fillStyle = "#c62828";
    mem.below_min.forEach(function (p) {
      if (p < a || p > b) return;
      var bx = X(p), i = bsearch(mem.fp, p);
      ctx.beginPath(); ctx.arc(bx, Y(mem.fv[Math.max(0, i)]), 3.5, 0, 7); ctx.fill();
    });
  }

  // ------------------------------------------------------------------ hover, click
  var tip = document.getElementById("tip"), sel = null;
  function stepOf(p) { return Math.floor(p / P); }
  function tickAt(p) { var i = bsearch(tickPos, p); return i < 0 ? 0 : ticks[i][1]; }
  function where(p, q) {
    var s1 = stepOf(p), s2 = q === undefined ? s1 : stepOf(q), t1 = tickAt(p), t2 = q === undefined ? t1 : tickAt(q);
    return (s1 === s2 ? "step " + s1 : "steps " + s1 + "\u2013" + s2) + ", " + (t1 === t2 ? "tick " + t1 : "ticks " + t1 + "\u2013" + t2);
  }
  function srcLine(n) {
    if (!n) return "";
    var row = document.getElementById("L" + n), code = row ? row.querySelector(".code") : null;
    return D.file + ":" + n + (code ? "   " + code.textContent.trim() : "");
  }
  function hitAt(px, py) {
    var p = Pos(px);
    if (mem && py < MEM_H) {
      var i = bsearch(mem.fp, p);
      if (i < 0) return null;
      return { text: "free pages: " + mem.fv[i] + " of " + mem.pages + " (min " + mem.min + ", low " + mem.low + ", high " + mem.high + ")\n" + where(p), s: mem.fp[i], e: i + 1 < mem.fp.length ? mem.fp[i + 1] : END, y: 0, h: MEM_H };
    }
    var li = bsearch(laneTop, py);
    if (li < 0) return null;
    var L = shown[li], yS = L.top + PAD + MARK_H, yA = yS + STATE_H + 2, yH = yA + ACT_H + 2, tol = 4 / view.scale;
    if (py < yS + STATE_H + 1) {   // markers (and preemptions) win near the cursor
      var best = -1, bd = tol;
      var k = firstAtOrAfter(L.marks, evP, p - tol);
      for (; k < L.marks.length && evPos[L.marks[k]] <= p + tol; k++) {
        var d = Math.abs(evPos[L.marks[k]] - p);
        if (d <= bd) { bd = d; best = L.marks[k]; }
      }
      if (best >= 0 && py < yS + 2) return evHit(best, L);
      for (var q = 0; q < L.pre.length; q++) {
        var x = L.pre[q];
        if (Math.abs(x.p - p) <= tol) return { text: L.name + " preempted: " + lanes[x.to].name + " runs instead\n" + where(x.p), s: x.p, e: x.p, y: yS, h: STATE_H };
      }
      if (best >= 0 && py < yS) return evHit(best, L);
      var j = bsearch(L.sp, p);
      if (j < 0 || py < yS) return null;
      var st = L.ss[j], lab = S[L.sl[j]], e = stateEnd(L, j);
      var span = L.stuck && j === L.sp.length - 1 ? "from " + where(L.sp[j]) + " until the verdict: it never runs again" : where(L.sp[j], e);
      return { text: L.name + " \u00b7 " + st + (lab ? ": " + lab : "") + "\n" + span + (L.sn[j] ? "\n" + srcLine(L.sn[j]) : ""), s: L.sp[j], e: e, y: yS, h: STATE_H, line: L.sn[j], lane: L.i };
    }
    if (py < yH) {
      for (var m = L.acts.length - 1; m >= 0; m--) {
        var A = L.acts[m];
        if (A.s - tol <= p && p <= A.e + tol) return { text: L.name + " \u00b7 " + A.kind + ": " + A.label + "\n" + where(A.s, A.e) + (A.line ? "\n" + srcLine(A.line) : ""), s: A.s, e: A.e, y: yA, h: ACT_H, line: A.line };
      }
      return null;
    }
    var row = Math.floor((py - yH) / (HOLD_H + 1));
    for (var n = 0; n < L.holds.length; n++) {
      var H = L.holds[n];
      if (H.row === row && H.s - tol <= p && p <= H.e + tol)
        return { text: L.name + " holds " + H.lock + (H.mode !== "lock" ? " (" + H.mode + ")" : "") + "\n" + where(H.s, H.e) + (H.line ? "\n" + srcLine(H.line) : ""), s: H.s, e: H.e, y: yH + row * (HOLD_H + 1), h: HOLD_H, line: H.line };
    }
    return null;
  }
  function evHit(i, L) {
    var line = evLine(i);
    return { text: (L ? L.name : "") + " \u00b7 " + evText(i) + "\n" + evCat(i) + " event #" + (i + 1) + ", " + where(evPos[i]) + (line ? "\n" + srcLine(line) : ""), s: evPos[i], e: evPos[i], y: L ? L.top + PAD : 0, h: MARK_H, line: line, ev: i, lane: L ? L.i : -1 };
  }
  function showTip(h, cx, cy) {
    if (!h) { tip.hidden = true; return; }
    tip.textContent = h.text; tip.hidden = false;
    var r = tip.getBoundingClientRect(), x = cx + 14, yy = cy + 14;
    if (x + r.width > window.innerWidth - 4) x = Math.max(4, cx - r.width - 14);
    if (yy + r.height > window.innerHeight - 4) yy = Math.max(4, cy - r.height - 14);
    tip.style.left = x + "px"; tip.style.top = yy + "px";
  }
  function local(e) { var r = cv.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  var drag = null;
  cv.addEventListener("mousemove", function (e) {
    var xy = local(e);
    if (drag) {
      view.x0 = drag.x0 - (xy[0] - drag.x) / view.scale; clampView(); redraw();
      if (Math.abs(xy[0] - drag.x) > 3) drag.moved = true;
      return;
    }
    showTip(hitAt(xy[0], xy[1]), e.clientX, e.clientY);
  });
  cv.addEventListener("mouseleave", function () { tip.hidden = true; drag = null; });
  cv.addEventListener("mousedown", function (e) { var xy = local(e); drag = { x: xy[0], x0: view.x0, moved: false }; });
  window.addEventListener("mouseup", function (e) {
    if (!drag) return;
    var d = drag; drag = null;
    if (d.moved || e.target !== cv) return;
    var xy = local(e), h = hitAt(xy[0], xy[1]);
    sel = h; redraw();
    if (h && h.line) showLine(h.line, false);
    if (h && h.ev !== undefined) showRow(h.ev);
  });
  cv.addEventListener("wheel", function (e) {
    e.preventDefault();
    var xy = local(e);
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      view.x0 += (e.deltaX || e.deltaY) / view.scale;
    } else {
      var p = Pos(xy[0]);
      view.scale *= Math.exp(-e.deltaY * 0.0015);
      clampView(); view.x0 = p - xy[0] / view.scale;
    }
    clampView(); redraw();
  }, { passive: false });
  cv.addEventListener("dblclick", function () { fit(); redraw(); });
  function zoomBy(f) { var c = Pos(W / 2); view.scale *= f; clampView(); view.x0 = c - W / 2 / view.scale; clampView(); redraw(); }
  document.getElementById("zoom-in").addEventListener("click", function () { zoomBy(2); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomBy(0.5); });
  document.getElementById("zoom-fit").addEventListener("click", function () { fit(); redraw(); });
  var filter = document.getElementById("lane-filter");
  filter.addEventListener("input", function () {
    layout(filter.value.trim().toLowerCase()); sel = null; resize(); draw();
  });
  document.addEventListener("keydown", function (e) {
    if (e.target && /INPUT|TEXTAREA/.test(e.target.tagName)) return;   // (typing a filter)
    var span = W / view.scale;
    if (e.key === "w" || e.key === "+") zoomBy(1.6);
    else if (e.key === "s" || e.key === "-") zoomBy(1 / 1.6);
    else if (e.key === "a") { view.x0 -= span * 0.2; clampView(); redraw(); }
    else if (e.key === "d") { view.x0 += span * 0.2; clampView(); redraw(); }
    else if (e.key === "0") { fit(); redraw(); }
  });
  function focus(p, steps) {
    view.scale = W / (steps * P); clampView(); view.x0 = p - W / 2 / view.scale; clampView(); redraw();
  }

  // ------------------------------------------------------------------ source links
  function showLine(n, scroll) {
    var prev = document.querySelectorAll("#source .hit");
    Array.prototype.forEach.call(prev, function (r) { r.classList.remove("hit"); });
    var row = document.getElementById("L" + n);
    if (!row) return;
    row.classList.add("hit");
    var wrap = document.getElementById("source-wrap");
    wrap.scrollTop = row.offsetTop - wrap.clientHeight / 2;
    if (scroll) row.scrollIntoView({ block: "center" });
  }
  var firstAt = {};
  for (var i = 0; i < NEV; i++) { var ln = evLine(i); if (ln && !(ln in firstAt)) firstAt[ln] = i; }
  Array.prototype.forEach.call(document.querySelectorAll("#source .ln.touched"), function (row) {
    row.addEventListener("click", function () {
      var n = +row.getAttribute("data-line"), i = firstAt[n];
      showLine(n, false);
      if (i !== undefined) {
        var li = evLane(i);
        if (li >= 0 && lanes[li].hidden) { filter.value = ""; layout(""); resize(); }
        sel = evHit(i, li >= 0 ? lanes[li] : null); focus(evPos[i], 40);
        document.getElementById("timeline").scrollIntoView({ block: "start" });
        showRow(i);
      }
    });
  });

  // ------------------------------------------------------------------ interleaving table
  var cols = [], colOf = {};
  lanes.forEach(function (L) { colOf[L.i] = -1; });
  for (i = 0; i < NEV; i++) { var l2 = evLane(i); if (l2 >= 0 && colOf[l2] === -1) colOf[l2] = 1; }
  lanes.forEach(function (L) { if (colOf[L.i] === 1) { colOf[L.i] = cols.length; cols.push(L); } });
  var forever = {};
  D.forever.forEach(function (i) { forever[i] = true; });
  var tbody = document.querySelector("#itable tbody"), shownFrom = NEV, CHUNK = 400;
  (function head() {
    var tr = document.querySelector("#itable thead tr");
    cols.forEach(function (L) { var th = document.createElement("th"); th.textContent = L.name; tr.appendChild(th); });
  })();
  function rowEl(i) {
    var tr = document.createElement("tr"), li = evLane(i);
    tr.id = "ev" + i;
    var prevLane = -2;
    for (var j = i - 1; j >= 0; j--) { var lj = evLane(j); if (lj >= 0) { prevLane = lj; break; } }
    if (li >= 0 && prevLane >= 0 && prevLane !== li) tr.className = "switch";
    if (forever[i]) tr.className = "forever";
    var m = document.createElement("td"); m.className = "mark"; tr.appendChild(m);
    var t = document.createElement("td"); t.className = "tick"; t.textContent = evTick[i]; tr.appendChild(t);
    var s = document.createElement("td"); s.className = "tick"; s.textContent = stepOf(evPos[i]); tr.appendChild(s);
    var c = li >= 0 ? colOf[li] : -1, text = evText(i) + (evLine(i) ? " :" + evLine(i) : "");
    if (c < 0) { var all = document.createElement("td"); all.colSpan = Math.max(1, cols.length); all.textContent = text; tr.appendChild(all); return tr; }
    if (c > 0) { var pre1 = document.createElement("td"); pre1.colSpan = c; tr.appendChild(pre1); }
    var cell = document.createElement("td"); cell.textContent = text; tr.appendChild(cell);
    if (c < cols.length - 1) { var post = document.createElement("td"); post.colSpan = cols.length - 1 - c; tr.appendChild(post); }
    return tr;
  }
  var more = document.getElementById("itable-more");
  function showEarlier(n) {
    var from = Math.max(0, shownFrom - n), frag = document.createDocumentFragment();
    for (var k = from; k < shownFrom; k++) frag.appendChild(rowEl(k));
    tbody.insertBefore(frag, tbody.firstChild);
    shownFrom = from;
    more.hidden = shownFrom === 0;
    more.textContent = "show " + Math.min(5000, shownFrom) + " earlier rows (" + shownFrom + " not shown)";
  }
  more.addEventListener("click", function () { showEarlier(5000); });
  showEarlier(CHUNK);
  function showRow(i) {
    if (i < shownFrom) showEarlier(shownFrom - i + 20);
    var prev = document.querySelector("#itable tr.sel");
    if (prev) prev.classList.remove("sel");
    var tr = document.getElementById("ev" + i);
    if (tr) { tr.classList.add("sel"); var w = tr.closest(".table-wrap"); if (w) w.scrollTop = tr.offsetTop - w.clientHeight / 2; }
  }

  // ------------------------------------------------------------------ test hooks
  // Where a span is on screen (for the browser test and for scripted screenshots).
  api.spanCenter = function (task, state) {
    var L = lanes.filter(function (l) { return l.name === task; })[0];
    if (!L || L.hidden) return null;
    for (var j = 0; j < L.sp.length; j++) {
      if (L.ss[j] !== state) continue;
      var x1 = Math.max(0, X(L.sp[j])), x2 = Math.min(W, X(stateEnd(L, j)));
      if (x2 - x1 < 2) continue;
      var r = cv.getBoundingClientRect();
      return { x: r.left + (x1 + x2) / 2, y: r.top + L.top + PAD + MARK_H + STATE_H / 2, line: L.sn[j] };
    }
    return null;
  };
  api.lanes = function () { return lanes.map(function (l) { return l.name; }); };
  api.shownLanes = function () { return shown.map(function (l) { return l.name; }); };
  api.focus = function (step, steps) { focus(step * P, steps); };
  api.fit = function () { fit(); draw(); };

  resize(); fit(); draw();
  window.addEventListener("resize", function () { var c = Pos(W / 2), sc = view.scale * W; resize(); view.scale = sc / W; view.x0 = c - W / 2 / view.scale; clampView(); draw(); });
  api.ready = true;

  function setupCopy() {
    Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (b) {
      b.addEventListener("click", function () {
        var src = document.getElementById(b.getAttribute("data-copy")), text = src ? src.textContent : "";
        // data-state stays (the label goes back to "copy"): what happened, for a test.
        var done = function () { b.textContent = "copied"; b.setAttribute("data-state", "copied"); setTimeout(function () { b.textContent = "copy"; }, 1500); };
        var fallback = function () {
          var r = document.createRange(); r.selectNodeContents(src);
          var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
          var ok = false;
          try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
          b.textContent = ok ? "copied" : "selected: press Ctrl-C";
          b.setAttribute("data-state", ok ? "copied" : "selected");
        };
        if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
        else fallback();
      });
    });
  }
})();
