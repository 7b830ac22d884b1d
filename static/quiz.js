import { api, busy, failure, h, $, toLogin } from "/static/common.js";

// The attempt in progress survives a reload of the page (same tab).
const STORE = "quiz-attempt";
let attempt = null; // {id, questions, deadline, seconds_left, pass_mark, round}
let answers = {};   // question id → [keys]
let current = 0;
let timerId = null;
let endsAt = 0;
let warned = false;
let timeUp = false;

function save() {
  sessionStorage.setItem(STORE, JSON.stringify({ id: attempt.id, answers, current }));
}

function show(section) {
  for (const id of ["intro", "paper", "result"]) $("#" + id).classList.toggle("hidden", id !== section);
}

/** A message at the top of the question screen, where it is seen at 360 px too. */
function notice(text, ...extra) {
  const box = $("#q-notice");
  box.replaceChildren(...(text ? [h("span", {}, text), ...extra] : []));
  return box;
}

function answered() {
  return attempt.questions.filter((q) => (answers[q.id] || []).length).length;
}

function renderProgress() {
  const bar = $("#q-bar");
  bar.max = attempt.questions.length;
  bar.value = answered();
  bar.textContent = `已答 ${answered()} / ${attempt.questions.length} 题`;
  $("#q-answered").textContent = `已答 ${answered()} / ${attempt.questions.length} 题`;
}

function clock() {
  const left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
  const t = $("#timer");
  t.textContent = `剩余 ${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
  t.classList.toggle("low", left <= 60);
  if (left <= 60 && left > 0 && !warned) {
    warned = true;
    notice("还剩 1 分钟。时间到时会自动交卷，没有作答的题按答错计算。");
  }
  if (left === 0 && !timeUp) {
    clearInterval(timerId);
    submitAtTimeUp();
  }
}

/** Time is up: nothing more can be chosen, and what was answered is submitted. */
async function submitAtTimeUp() {
  timeUp = true;
  $("#q-fieldset").disabled = true;
  $("#prev").disabled = true;
  $("#next").disabled = true;
  window.scrollTo(0, 0);
  notice("时间到了，正在交卷…");
  const body = {
    answers: attempt.questions.map((q) => ({ question: q.id, choices: answers[q.id] || [] })),
    time_up: true,
  };
  const res = await api(`/api/quiz/attempts/${attempt.id}/submit`, { method: "POST", body });
  if (res.status === 401) return toLogin();
  if (res.ok) return finish(res.data, true);
  if (res.status === 409) return reopen();
  if (res.status === 410) {
    sessionStorage.removeItem(STORE);
    return notice("时间到了，这次答题已经结束。", " ",
      h("button", { class: "linkish", type: "button", onclick: (e) => begin(e.currentTarget) }, "重新开始答题"));
  }
  failure(notice(""), res, submitAtTimeUp);
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
        renderProgress();
      });
      return h("label", { class: "option", for: `opt-${o.key}` }, input, h("span", {}, `${o.key}. ${o.text}`));
    }),
  );
  $("#prev").disabled = current === 0 || timeUp;
  $("#next").textContent = current === n - 1 ? "交卷" : "下一题";
  $("#q-error").textContent = "";
  renderProgress();
}

function open(a, saved) {
  attempt = a;
  answers = saved ? saved.answers : {};
  current = saved ? Math.min(saved.current, a.questions.length - 1) : 0;
  save();
  endsAt = Date.now() + a.seconds_left * 1000;
  warned = false;
  timeUp = false;
  clearInterval(timerId);
  timerId = setInterval(clock, 1000);
  notice("");
  $("#q-fieldset").disabled = false;
  $("#next").disabled = false;
  show("paper");
  clock();
  renderQuestion();
  $("#q-options input")?.focus();
}

async function begin(button) {
  $("#start-error").textContent = "";
  const res = await busy(button, "正在出题…", () => api("/api/quiz/attempts", { method: "POST", body: {} }));
  if (!res) return;
  if (res.status === 401) return toLogin();
  if (!res.ok) {
    show("intro");
    failure($("#start-error"), res, () => begin($("#start")));
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
  const body = { answers: attempt.questions.map((q) => ({ question: q.id, choices: answers[q.id] })) };
  const res = await busy($("#next"), "正在交卷…",
    () => api(`/api/quiz/attempts/${attempt.id}/submit`, { method: "POST", body }));
  if (!res || timeUp) return;
  if (res.status === 401) return toLogin();
  // Sent twice (the first answer lost on the way): the result is the first one's.
  if (res.status === 409) return reopen();
  if (!res.ok) {
    failure($("#q-error"), res, submit);
    return;
  }
  finish(res.data, false);
}

/** The attempt as the service has it, for a submission whose answer did not arrive. */
async function reopen() {
  const res = await api(`/api/quiz/attempts/${attempt.id}`);
  if (res.ok && res.data.result) return finish(res.data.result, false);
  failure(notice(""), res, reopen);
}

function finish(result, automatic) {
  clearInterval(timerId);
  sessionStorage.removeItem(STORE);
  renderResult(result, automatic);
}

function renderResult(r, automatic) {
  show("result");
  const verdict = $("#verdict");
  verdict.textContent = r.passed ? "恭喜，通过了！" : "这次没有通过";
  verdict.className = "verdict " + (r.passed ? "pass" : "fail");
  $("#score").textContent = `答对 ${r.score} / ${r.out_of} 题（答对 ${r.pass_mark} 题即为通过）`;
  $("#time-up-note").classList.toggle("hidden", !automatic);
  const news = $("#ticket-news");
  news.textContent = r.ticket.message;
  news.classList.toggle("ok", r.ticket.status === "issued" || r.ticket.status === "already_held");
  $("#review").replaceChildren(
    ...r.results.map((q, i) =>
      h("div", { class: "card review" + (q.correct ? "" : " wrong") },
        h("p", { class: "question" }, `${i + 1}. ${q.text}`),
        h("ul", {}, ...q.options.map((o) => h("li", {}, `${o.key}. ${o.text}`))),
        h("p", {}, q.correct ? "✓ 回答正确" : "✗ 回答错误", "　您的答案：", q.your_choices.length ? q.your_choices.join("、") : "未作答", "　正确答案：", h("strong", {}, q.correct_choices.join("、"))),
        h("p", { class: "small" }, "解析：", q.explanation),
      )),
  );
  window.scrollTo(0, 0);
  verdict.focus();
}

$("#start").addEventListener("click", (e) => begin(e.currentTarget));
$("#again").addEventListener("click", (e) => begin(e.currentTarget));
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
  if (!me.ok) failure($("#start-error"), me, () => location.reload());
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
    if (res.ok && !res.data.submitted) {
      open(res.data, saved);
    } else if (res.ok && res.data.result) {
      renderResult(res.data.result, false);
    } else {
      sessionStorage.removeItem(STORE);
    }
  }
}
