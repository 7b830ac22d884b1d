import { api, h, $, localTime, STATE_NAMES, toLogin } from "/static/common.js";

const res = await api("/api/me");
if (res.status === 401) {
  toLogin();
} else if (!res.ok) {
  $("#this-week").replaceChildren(h("p", { role: "alert" }, res.error.message));
} else {
  const me = res.data;
  const p = me.participant;
  $("#who").textContent = `${p.display_name ? p.display_name + "，" : ""}手机号 ${p.phone}`;

  const week = $("#this-week");
  if (me.current_round && me.holds_current_ticket) {
    week.append(h("p", {}, h("strong", {}, `✓ 已获得第 ${me.current_round} 期抽奖券`)), h("p", { class: "muted" }, "本期报名截止后公开抽奖，请留意开奖结果。"));
  } else if (me.current_round) {
    week.append(h("p", {}, h("strong", {}, `还没有第 ${me.current_round} 期抽奖券`)), h("a", { class: "btn", href: "/quiz" }, "去答题"));
  } else {
    week.append(h("p", {}, "现在不在报名时段。"));
  }

  if (me.tickets.length === 0) {
    $("#tickets").append(h("p", { class: "muted" }, "还没有抽奖券。答题通过即可获得当期抽奖券。"));
  } else {
    $("#tickets").append(
      ...me.tickets.map((t) =>
        h("div", { class: "card" },
          h("p", {}, h("strong", {}, `第 ${t.round} 期`), " ", h("span", { class: `badge ${t.round_state}` }, STATE_NAMES[t.round_state] || t.round_state)),
          h("p", { class: "small" }, "券号：", h("span", { class: "mono" }, t.ticket)),
          h("p", { class: "small muted" }, `获得时间 ${localTime(t.obtained_at, true)}；报名截止 ${localTime(t.round_closes_at)}`),
        )),
    );
  }
}

$("#logout").addEventListener("click", async () => {
  await api("/api/logout", { method: "POST", body: {} });
  location.href = "/";
});
