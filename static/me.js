import { api, h, $, localTime, STATE_NAMES, VOUCHER_STATUS_NAMES, toLogin } from "/static/common.js";

function day(d) {
  const [y, m, dd] = d.split("-");
  return `${y}年${Number(m)}月${Number(dd)}日`;
}

function voucherCard(v) {
  const live = v.status === "usable" || v.status === "not_yet_valid";
  const where = v.policy === "once_per_venue"
    ? `可在以下每个景区各使用一次：${v.venues.map((x) => x.name).join("、")}`
    : `可在以下任一商户使用一次：${v.venues.map((x) => x.name).join("、")}`;
  return h("div", { class: "card voucher" },
    live ? h("img", { class: "qr", src: v.qr_url, alt: `兑换码 ${v.code} 的二维码`, width: 180, height: 180 }) : null,
    h("div", {},
      h("p", {}, h("strong", {}, v.kind_name), v.face_value_yuan ? `（面值 ${v.face_value_yuan} 元）` : "", " ",
        h("span", { class: `badge ${v.status}` }, VOUCHER_STATUS_NAMES[v.status] || v.status)),
      h("p", { class: "code mono" }, v.code),
      h("p", { class: "small" }, `第 ${v.round} 期${v.tier_label}；有效期 ${day(v.valid_from)} 至 ${day(v.valid_until)}`),
      h("p", { class: "small" }, where),
      v.holder_check ? h("p", { class: "small muted" }, "使用时请出示本页，并告知前台您手机号的后四位。") : null,
      v.visited.length ? h("p", { class: "small" }, `已使用：${v.visited.map((x) => `${x.venue_name}（${localTime(x.at, true)}）`).join("、")}`) : null,
      v.status === "void" ? h("p", { class: "small muted" }, `已于 ${localTime(v.voided_at, true)} 作废${v.void_reason ? "：" + v.void_reason : ""}`) : null,
    ),
  );
}

$("#logout").addEventListener("click", async () => {
  await api("/api/logout", { method: "POST", body: {} });
  location.href = "/";
});


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
          t.excluded ? h("p", { class: "notice", role: "status" }, `这张券不参加本期抽奖：${t.excluded_reason}。如有疑问请联系主办方。`) : null,
        )),
    );
  }

  if (me.vouchers.length > 0) {
    $("#vouchers").classList.remove("card");
    $("#vouchers").replaceChildren(...me.vouchers.map(voucherCard));
  }
}
