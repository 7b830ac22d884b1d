import { api, h, $, toLogin } from "/static/common.js";

// The attempt in progress survives a reload of the page (same tab).
const STORE = "quiz-attempt";
let attempt = null; // {id, questions, deadline, seconds_left, pass_mark, round}
let answers = {};   // question id → [keys]
let current = 0;
let timerId = null;
let endsAt = 0;

function save() {
  sessionStorage.setItem(STORE, JSON.stringify({ id: attempt.id, answers, current }));
}

function show(section) {
  for (const id of ["intro", "paper", "result"]) $("#" + id).classList.toggle("hidden", id !== section);
}

function clock() {
  const left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
  const t = $("#timer");
  t.textContent = `剩余 ${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
  t.classList.toggle("low", left <= 60);
  if (left === 0) {
    clearInterval(timerId);
    $("#q-error").textContent = "时间到了，这次答题已结束。可以重新开始答题。";
    $("#next").disabled = true;
    $("#prev").disabled = true;
    sessionStorage.removeItem(STORE);
    $("#again-inline")?.remove();
    $("#paper").append(h("div", { class: "cta", id: "again-inline" },
      h("button", { class: "btn", type: "button", onclick: begin }, "重新开始答题")));
  }
}

function renderQuestion() {
  const q = attempt.questions[current];
  const n = attempt.questions.length;
  $("#q-progress").textContent = `第 ${current + 1} / ${n} 题`;
  $("#q-text").textContent = q.text;
  $("#q-hint").textContent = `${q.topic} · ${q.multiple ? "多选题，选出所有正确的选项" : "单选题"}`;
  const chosen = answers[q.id] || [];
  const type = q.multiple ? "checkbox" : "radio";
  $("#q-options").replaceChildren(
    ...q.options.map((o) => {
      const input = h("input", { type, name: "choice", value: o.key, id: `opt-${o.key}` });
      input.checked = chosen.includes(o.key);
      input.addEventListener("change", () => {
        answers[q.id] = [...document.querySelectorAll("#q-options input:checked")].map((i) => i.value);
        $("#q-error").textContent = "";
        save();
      });
      return h("label", { class: "option", for: `opt-${o.key}` }, input, h("span", {}, `${o.key}. ${o.text}`));
    }),
  );
  $("#prev").disabled = current === 0;
  $("#next").textContent = current === n - 1 ? "交卷" : "下一题";
  $("#q-error").textContent = "";
}

function open(a, saved) {
  attempt = a;
  answers = saved ? saved.answers : {};
  current = saved ? Math.min(saved.current, a.questions.length - 1) : 0;
  save();
  endsAt = Date.now() + a.seconds_left * 1000;
  clearInterval(timerId);
  timerId = setInterval(clock, 1000);
  $("#again-inline")?.remove();
  $("#next").disabled = false;
  show("paper");
  clock();
  renderQuestion();
  $("#q-options input")?.focus();
}

async function begin() {
  $("#start-error").textContent = "";
  const res = await api("/api/quiz/attempts", { method: "POST", body: {} });
  if (res.status === 401) return toLogin();
  if (!res.ok) {
    show("intro");
    $("#start-error").textContent = res.error.message;
    return;
  }
  open(res.data, null);
}

async function submit() {
  const missing = attempt.questions.findIndex((q) => !(answers[q.id] || []).length);
  if (missing >= 0) {
    current = missing;
    renderQuestion();
    $("#q-error").textContent = `第 ${missing + 1} 题还没有作答`;
    return;
  }
  $("#next").disabled = true;
  const body = { answers: attempt.questions.map((q) => ({ question: q.id, choices: answers[q.id] })) };
  const res = await api(`/api/quiz/attempts/${attempt.id}/submit`, { method: "POST", body });
  $("#next").disabled = false;
  if (res.status === 401) return toLogin();
  if (!res.ok) {
    $("#q-error").textContent = res.error.message;
    return;
  }
  clearInterval(timerId);
  sessionStorage.removeItem(STORE);
  renderResult(res.data);
}

function renderResult(r) {
  show("result");
  const verdict = $("#verdict");
  verdict.textContent = r.passed ? "恭喜，通过了！" : "这次没有通过";
  verdict.className = "verdict " + (r.passed ? "pass" : "fail");
  $("#score").textContent = `答对 ${r.score} / ${r.out_of} 题（答对 ${r.pass_mark} 题即为通过）`;
  const news = $("#ticket-news");
  news.textContent = r.ticket.message;
  news.classList.toggle("ok", r.ticket.status === "issued" || r.ticket.status === "already_held");
  $("#review").replaceChildren(
    ...r.results.map((q, i) =>
      h("div", { class: "card review" + (q.correct ? "" : " wrong") },
        h("p", { class: "question" }, `${i + 1}. ${q.text}`),
        h("ul", {}, ...q.options.map((o) => h("li", {}, `${o.key}. ${o.text}`))),
        h("p", {}, q.correct ? "✓ 回答正确" : "✗ 回答错误", "　您的答案：", q.your_choices.join("、"), "　正确答案：", h("strong", {}, q.correct_choices.join("、"))),
        h("p", { class: "small" }, "解析：", q.explanation),
      )),
  );
  verdict.focus();
}

$("#start").addEventListener("click", begin);
$("#again").addEventListener("click", begin);
$("#prev").addEventListener("click", () => { if (current > 0) { current--; save(); renderQuestion(); } });
$("#next").addEventListener("click", () => {
  const q = attempt.questions[current];
  if (!(answers[q.id] || []).length) {
    $("#q-error").textContent = "请先选择答案";
    return;
  }
  if (current < attempt.questions.length - 1) {
    current++;
    save();
    renderQuestion();
    $("#q-options input")?.focus();
  } else {
    submit();
  }
});

// Who is here, and is an attempt already under way?
const me = await api("/api/me");
if (me.status === 401) {
  toLogin();
} else {
  const c = await api("/api/campaign");
  if (c.ok) {
    const q = c.data.quiz;
    $("#intro-rules").textContent = `每次 ${q.questions_per_attempt} 题，${q.time_limit_minutes} 分钟内完成，答对 ${q.pass_mark} 题即为通过。每天最多 ${q.daily_attempts} 次。`;
    const round = c.data.current_round;
    $("#intro-round").textContent = round
      ? (me.ok && me.data.holds_current_ticket ? `您已持有第 ${round} 期抽奖券，可以继续答题学习。` : `现在是第 ${round} 期报名时间，通过即可获得本期抽奖券。`)
      : "现在不在报名时段，答题通过也不会获得抽奖券，可以先学习练习。";
  }
  const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
  if (saved) {
    const res = await api(`/api/quiz/attempts/${saved.id}`);
    if (res.ok && !res.data.submitted && res.data.seconds_left > 0) open(res.data, saved);
    else if (res.ok && res.data.result) renderResult(res.data.result);
    else sessionStorage.removeItem(STORE);
  }
}
