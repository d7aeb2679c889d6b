#!/usr/bin/env python3
"""Generate the diemcau Grafana dashboards in grafana/dashboards/*.json.

The JSON files are committed (Grafana provisioning reads them directly); this
script is their source. Edit here, then run:

    python3 grafana/generate.py          # rewrite the JSON files
    python3 grafana/generate.py --check  # exit 1 if the files are out of date

Every panel and query uses the `${datasource}` template variable. Recording
rules used here are defined in deploy/prometheus/rules/diemcau-recording.yml.
"""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}
SLO_TARGET = 0.995  # keep in sync with diemcau:slo_availability_target:ratio

STATE_MAPPINGS = [{
    "type": "value",
    "options": {
        "0": {"text": "Chưa rõ (unknown)", "color": "text", "index": 0},
        "1": {"text": "Hoạt động (up)", "color": "green", "index": 1},
        "2": {"text": "Suy giảm (degraded)", "color": "orange", "index": 2},
        "3": {"text": "Mất kết nối (down)", "color": "red", "index": 3},
    },
}]
RATIO_THRESHOLDS = {"mode": "absolute", "steps": [
    {"color": "red", "value": None}, {"color": "orange", "value": 0.9},
    {"color": "yellow", "value": 0.99}, {"color": "green", "value": SLO_TARGET}]}


POOR_MOS = 3.6  # keep in sync with [quality] poor_mos and DiemcauEndpointPoorQuality
MOS_THRESHOLDS = {"mode": "absolute", "steps": [
    {"color": "red", "value": None}, {"color": "orange", "value": 3.1},
    {"color": "yellow", "value": POOR_MOS}, {"color": "green", "value": 4.0}]}
MOS_HELP = ("Điểm chất lượng hội nghị: MOS theo E-model ITU-T G.107/G.107.1 tính từ độ trễ, jitter và "
            "mất gói ICMP của các vòng đo gần nhất (1 = rất tệ, 4.5 = tốt nhất; dưới %.1f nhiều người "
            "không hài lòng). Không có giá trị khi điểm cầu mất kết nối. Xem docs/quality.md." % POOR_MOS)
WINDOW_HELP = ("Trung bình mọi vòng đo trong khoảng $__rate_interval, tính từ bộ đếm _sum/_count "
               "(A); B là giá trị vòng cuối tại lúc Prometheus scrape, bỏ sót các vòng giữa hai lần scrape.")


def mean_of(summary, sel):
    """Mean of a summary over the rate interval: every round counts, not one in three."""
    return ('rate(%s_sum{%s}[$__rate_interval]) / rate(%s_count{%s}[$__rate_interval])'
            % (summary, sel, summary, sel))


# ---------------------------------------------------------------- variables
def v_datasource():
    return {"type": "datasource", "name": "datasource", "label": "Nguồn dữ liệu",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
            "regex": "", "options": [], "includeAll": False, "multi": False}


def v_query(name, label, query, multi=True, include_all=True, default_all=False):
    current = {}
    if default_all:
        current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "sort": 1, "regex": "", "hide": 0,
            "multi": multi, "includeAll": include_all,
            "allValue": ".*" if include_all else None,
            "current": current, "options": []}


V_PROVINCE = lambda multi=True: v_query(  # noqa: E731
    "province", "Tỉnh/thành phố", "label_values(diemcau_endpoint_up, province)", multi, multi)
# Districts exist only in the 2021 map: since 1 July 2025 endpoints have no district label. The
# variable lists real districts only and defaults to All (".*", which also matches a missing
# label), so a province without districts shows everything instead of a blank choice.
V_DISTRICT = v_query("district", "Quận/huyện (nếu có)",
                     'label_values(diemcau_endpoint_up{province=~"$province", district!=""}, district)',
                     default_all=True)
V_CARRIER = v_query("carrier", "Nhà mạng", "label_values(diemcau_endpoint_up, carrier)")
V_ENDPOINT = v_query(
    "endpoint", "Điểm cầu",
    'label_values(diemcau_endpoint_up{province=~"$province", district=~"$district", carrier=~"$carrier"}, endpoint)',
    multi=False, include_all=False)


# ------------------------------------------------------------------- panels
def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant, "format": fmt}
    return t


def panel(kind, title, x, y, w, h, targets, description="", unit=None, **extra):
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
         "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    for k, v in extra.items():
        if k == "defaults":
            p["fieldConfig"]["defaults"].update(v)
        else:
            p[k] = v
    return p


def stat(title, x, y, w, h, expr, color="green", unit=None, description="", defaults=None, legend="", **kw):
    """A legend ("{{vantage}}") means one value per series: named only when there are several
    (text mode auto), so a single vantage looks as before."""
    d = {"color": {"mode": "fixed", "fixedColor": color}}
    d.update(defaults or {})
    return panel("stat", title, x, y, w, h, [target(expr, legend, instant=True)], description, unit,
                 defaults=d,
                 options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background",
                          "graphMode": "none", "textMode": "auto" if legend else "value"}, **kw)


def ts(title, x, y, w, h, targets, unit=None, description="", **kw):
    return panel("timeseries", title, x, y, w, h, targets, description, unit,
                 options={"legend": {"displayMode": "table", "placement": "right",
                                     "calcs": ["lastNotNull", "min"]},
                          "tooltip": {"mode": "multi", "sort": "desc"}}, **kw)


def table(title, x, y, w, h, targets, description="", transformations=None, **kw):
    return panel("table", title, x, y, w, h, targets, description,
                 transformations=transformations or [], options={"showHeader": True}, **kw)


def dashboard(uid, title, description, variables, panels, links=()):
    for i, p in enumerate(panels, 1):
        p["id"] = i
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["diemcau"], "timezone": "Asia/Ho_Chi_Minh", "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"}, "graphTooltip": 1,
        "links": [{"type": "dashboards", "tags": ["diemcau"], "asDropdown": True,
                   "title": "Diemcau", "includeVars": True, "keepTime": True}] + list(links),
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": panels,
    }


def link(title, uid, params=""):
    return {"title": title, "url": "/d/%s?${__url_time_range}%s" % (uid, params)}


# --------------------------------------------------------------------- area
# The "area" of an endpoint is its district where it has one (the 2021 map), else its province
# (the two-tier map since 1 July 2025: province > commune). label_join with one source label
# copies it, so no regex replacement ("$1") meets Grafana's variable syntax.
AREA_HELP = ("Khu vực: quận/huyện nếu danh mục còn cấp huyện (bản đồ 2021); với xã/phường không "
             "có huyện (bản đồ 2 cấp từ 1/7/2025) là chính tỉnh/thành.")
NOT_MAINT = "unless on(endpoint) (diemcau_endpoint_maintenance == 1)"
# Endpoints of the selected province without a district; only when every district is selected.
DIRECT = 'province=~"$province", district="", district=~"$district"'


def by_area(district_expr, direct_expr):
    """District aggregates, plus the province's endpoints without a district as one area. The
    `max by` drops the recording rule's name, so table merges join on labels only."""
    return ('label_join(max by (province, district) (%s), "area", "", "district")\n'
            'or\nlabel_join(%s, "area", "", "province")' % (district_expr, direct_expr))


def area_rule(level_metric, agg, raw_metric):
    sel = 'province=~"$province", district=~"$district"'
    return by_area('province_district:%s{%s}' % (level_metric, sel),
                   '%s by (province) (%s{%s} %s)' % (agg, raw_metric, DIRECT, NOT_MAINT))


def area_down_count():
    sel = 'province=~"$province", district=~"$district"'
    direct = 'diemcau_endpoint_up{%s} %s' % (DIRECT, NOT_MAINT)
    return by_area('province_district:diemcau_endpoints_down:count{%s}' % sel,
                   '(count by (province) ((%s) == 0) or count by (province) (%s) * 0)' % (direct, direct))


def with_area(metric_sel):
    """Per-endpoint series with an `area` label: the district, or the province without one."""
    head, sel = metric_sel.split("{", 1)
    rest = sel.rsplit("}", 1)
    return ('label_join(%s{%s, district!=""}%s, "area", "", "district")\nor\n'
            'label_join(%s{%s, district=""}%s, "area", "", "province")'
            % (head, rest[0], rest[1], head, rest[0], rest[1]))


# Endpoint tables: the area column replaces district (absent in the two-tier map).
ENDPOINT_TABLE_ORGANIZE = {"id": "organize", "options": {
    "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "district": True},
    "indexByName": {"endpoint": 0, "commune": 1, "area": 2, "province": 3, "carrier": 4, "vantage": 5},
    # `endpoint` keeps its name: the row links read ${__data.fields.endpoint}.
    "renameByName": {"area": "Khu vực", "vantage": "Điểm đo"}}}


# ----------------------------------------------------------------- vantages
# Several diemcau instances ("vantages", `[vantage] name`, e.g. vnpt-hanoi and viettel-hanoi) may
# probe the same endpoints. Their series differ only by the job/instance Prometheus gives each
# target; diemcau_vantage_info{vantage} (always 1) names the vantage of an instance. The join
# keeps the values and adds the `vantage` label; with a single vantage it changes nothing else.
# The recording rules aggregate over instances: panels built on them are not split by vantage.
V_VANTAGE = v_query("vantage", "Điểm đo (vantage)", "label_values(diemcau_vantage_info, vantage)",
                    default_all=True)
VANTAGE_HELP = ("Điểm đo (vantage): nơi đặt một máy giám sát diemcau ([vantage] name, ví dụ vnpt-hanoi); "
                "nhiều điểm đo cùng đo một danh mục điểm cầu, mỗi điểm đo cho một giá trị.")


def per_vantage(expr):
    """`expr` (per instance: per endpoint, per region…) for the selected vantages, with a
    `vantage` label."""
    return ('(%s)\n* on(job, instance) group_left(vantage) diemcau_vantage_info{vantage=~"$vantage"}'
            % expr)


def disagreeing(sel):
    """diemcau_endpoint_up per vantage (1 up or degraded, 0 down) of the endpoints in `sel`
    that some selected vantages see up and others down."""
    up = per_vantage('diemcau_endpoint_up{%s}' % sel)
    return ('(%s)\nand on(endpoint) (\n  max by (endpoint) (%s)\n  > min by (endpoint) (%s)\n)'
            % (up, up, up))


def disagreeing_with_area(sel):
    return ('label_join(%s, "area", "", "district")\nor\nlabel_join(%s, "area", "", "province")'
            % (disagreeing(sel + ', district!=""'), disagreeing(sel + ', district=""')))


# The disagreement table: one row per (endpoint, vantage), with what that vantage sees.
DISAGREE_ORGANIZE = json.loads(json.dumps(ENDPOINT_TABLE_ORGANIZE))
DISAGREE_ORGANIZE["options"]["indexByName"]["Value"] = 6
DISAGREE_ORGANIZE["options"]["renameByName"]["Value"] = "Điểm đo thấy"
VANTAGE_UP_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "Mất kết nối (down)", "color": "red", "index": 0},
    "1": {"text": "Hoạt động (up)", "color": "green", "index": 1}}}]


# --------------------------------------------------------------- dashboards
# Share of a province's endpoints that are up, for the selected carriers. Weighted by endpoint
# count: the mean of the per-carrier ratios would rank a province with 1 Viettel endpoint down
# and 99 VNPT endpoints up at 50%.
PROVINCE_UP_RATIO = (
    '1 - sum by (province) (province_carrier:diemcau_endpoints_down:count{carrier=~"$carrier"})\n'
    '  / sum by (province) (province_carrier:diemcau_endpoints:count{carrier=~"$carrier"})')


def overview():
    up = 'diemcau_region_endpoints{carrier=~"$carrier", state="%s"}'
    geo_expr = ('(%s)\n'
                '* on(province) group_left(lat, lon) diemcau_province_info' % PROVINCE_UP_RATIO)
    geomap = panel(
        "geomap", "Bản đồ khả dụng theo tỉnh/thành", 0, 5, 14, 14,
        [target(geo_expr, instant=True, fmt="table")],
        "Tỷ lệ điểm cầu hoạt động theo tỉnh/thành. Toạ độ lấy từ metric "
        "diemcau_province_info{province,lat,lon} (centroid tỉnh), daemon xuất khi cấu hình "
        "[geo] province_centroids trỏ tới một tệp CSV province,lat,lon; không có tệp thì bản đồ trống.",
        "percentunit",
        defaults={"thresholds": RATIO_THRESHOLDS, "color": {"mode": "thresholds"}, "min": 0, "max": 1},
        transformations=[{"id": "convertFieldType", "options": {"conversions": [
            {"targetField": "lat", "destinationType": "number"},
            {"targetField": "lon", "destinationType": "number"}], "fields": {}}}],
    )
    geomap["options"] = {
        "view": {"id": "coords", "lat": 16.0, "lon": 106.0, "zoom": 5},
        "controls": {"showZoom": True, "mouseWheelZoom": True},
        "basemap": {"type": "default", "name": "Basemap"},
        "layers": [{
            "type": "markers", "name": "Tỉnh/thành",
            "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
            "config": {"showLegend": True,
                       "size": {"fixed": 8, "min": 6, "max": 14},
                       "color": {"field": "Value", "fixed": "green"},
                       "text": {"field": "province", "mode": "field"}},
            "tooltip": True,
        }],
        "tooltip": {"mode": "details"},
    }
    # Counts per vantage: each vantage probes every endpoint, a sum over vantages would count
    # each endpoint once per vantage.
    count = lambda state: "sum by (vantage) (%s)" % per_vantage(up % state)  # noqa: E731
    down_by_vantage = count("down")
    panels = [
        stat("Hoạt động (up)", 0, 0, 4, 5, count("up"), "green", legend="{{vantage}}"),
        stat("Suy giảm (degraded)", 4, 0, 4, 5, count("degraded"), "orange", legend="{{vantage}}"),
        stat("Mất kết nối (down)", 8, 0, 4, 5, down_by_vantage, "red", legend="{{vantage}}"),
        stat("Chưa rõ (unknown)", 12, 0, 4, 5, count("unknown"), "text", legend="{{vantage}}"),
        stat("Tỷ lệ khả dụng toàn quốc", 16, 0, 4, 5,
             'avg by (vantage) (%s)' % per_vantage(
                 'diemcau_endpoint_up{carrier=~"$carrier"} unless on(endpoint) (diemcau_endpoint_maintenance == 1)'),
             unit="percentunit", legend="{{vantage}}",
             defaults={"thresholds": RATIO_THRESHOLDS, "color": {"mode": "thresholds"}}),
        stat("Đang bảo trì (maintenance)", 20, 0, 4, 5,
             'count(max by (endpoint) (diemcau_endpoint_maintenance{carrier=~"$carrier"}) == 1) or vector(0)',
             "blue", description="Số điểm cầu đang bảo trì (mỗi điểm cầu một lần, dù nhiều điểm đo cùng đo)."),
        geomap,
        table("Tỉnh/thành kém nhất", 14, 5, 10, 14,
              [target('bottomk(15, %s)' % PROVINCE_UP_RATIO,
                      instant=True, fmt="table")],
              "15 tỉnh/thành có tỷ lệ điểm cầu hoạt động thấp nhất. Bấm để xem chi tiết.",
              defaults={"unit": "percentunit", "thresholds": RATIO_THRESHOLDS,
                        "links": [{"title": "Chi tiết tỉnh",
                                   "url": "/d/diemcau-province?var-province=${__data.fields.province}&${__url_time_range}"}]}),
        table("Sự cố đang diễn ra (active incidents)", 0, 19, 24, 9,
              [target('ALERTS{alertstate="firing", alertname=~"Diemcau.*"}', instant=True, fmt="table")],
              "Cảnh báo diemcau đang kích hoạt trong Prometheus (chưa áp dụng inhibit của Alertmanager)."),
        ts("Số điểm cầu mất kết nối theo nhà mạng", 0, 28, 12, 8,
           [target('sum by (carrier, vantage) (%s)' % per_vantage(up % "down"), "{{carrier}} · {{vantage}}")],
           description=VANTAGE_HELP),
        ts("Tỷ lệ khả dụng theo nhà mạng", 12, 28, 12, 8,
           [target('carrier:diemcau_endpoint_up:ratio{carrier=~"$carrier"}', "{{carrier}}")],
           "percentunit"),
        table("Chất lượng hội nghị theo tỉnh × nhà mạng (MOS)", 0, 36, 12, 10,
              [target('province_carrier:diemcau_endpoint_mos:avg{carrier=~"$carrier"}', instant=True, fmt="table")],
              MOS_HELP + " Trung bình các điểm cầu còn kết nối, không tính điểm cầu đang bảo trì.",
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True},
                  "renameByName": {"province": "Tỉnh/thành", "carrier": "Nhà mạng", "Value": "MOS TB"}}},
                  {"id": "sortBy", "options": {"sort": [{"field": "MOS TB"}]}}],
              defaults={"decimals": 2, "thresholds": MOS_THRESHOLDS,
                        "custom": {"cellOptions": {"type": "color-background"}},
                        "links": [{"title": "Chi tiết tỉnh",
                                   "url": "/d/diemcau-province?var-province=${__data.fields.province}&${__url_time_range}"}]}),
        table("Điểm cầu chất lượng hội nghị kém (MOS < %.1f)" % POOR_MOS, 12, 36, 12, 10,
              [target(per_vantage('diemcau_endpoint_mos{carrier=~"$carrier"} < %s' % POOR_MOS),
                      instant=True, fmt="table")],
              MOS_HELP, transformations=[ENDPOINT_TABLE_ORGANIZE],
              defaults={"decimals": 2, "thresholds": MOS_THRESHOLDS}),
        table("Các điểm đo không thống nhất (vantages disagree)", 0, 46, 16, 10,
              [target(disagreeing_with_area('carrier=~"$carrier"'), instant=True, fmt="table")],
              "Điểm cầu mà có điểm đo thấy hoạt động, có điểm đo thấy mất kết nối: mỗi dòng là một điểm đo "
              "và điều nó thấy. Thường là sự cố trên đường từ một nhà mạng (hoặc tại chính máy giám sát), "
              "không phải tại điểm cầu. Trống khi chỉ có một điểm đo. " + VANTAGE_HELP + " " + AREA_HELP,
              transformations=[DISAGREE_ORGANIZE,
                               {"id": "sortBy", "options": {"sort": [{"field": "endpoint"}]}}],
              defaults={"mappings": VANTAGE_UP_MAPPINGS,
                        "custom": {"cellOptions": {"type": "color-text"}},
                        "links": [{"title": "Chi tiết điểm cầu",
                                   "url": "/d/diemcau-endpoint?var-endpoint=${__data.fields.endpoint}"
                                          "&${__url_time_range}"}]}),
        ts("Số điểm cầu mất kết nối theo điểm đo", 16, 46, 8, 10,
           [target(down_by_vantage, "{{vantage}}")],
           "Mỗi điểm đo đếm các điểm cầu nó thấy mất kết nối. Các đường tách nhau: một điểm đo thấy "
           "sự cố mà điểm đo khác không thấy. " + VANTAGE_HELP,
           defaults={"min": 0, "decimals": 0}),
    ]
    return dashboard("diemcau-overview", "Diemcau / Tổng quan toàn quốc",
                     "Tổng quan trạng thái ~10.600 điểm cầu truyền hình xã/phường.",
                     [v_datasource(), V_CARRIER, V_VANTAGE], panels,
                     [link("Tỉnh/thành", "diemcau-province"), link("SLA nhà mạng", "diemcau-carrier-sla"),
                      link("Vị trí sự cố", "diemcau-paths")])


def province():
    esel = 'province=~"$province", district=~"$district", carrier=~"$carrier"'
    state_link = {"title": "Chi tiết điểm cầu",
                  "url": "/d/diemcau-endpoint?var-endpoint=${__data.fields.endpoint}&${__url_time_range}"}
    panels = [
        ts("Tỷ lệ hoạt động theo khu vực", 0, 0, 12, 9,
           [target(area_rule("diemcau_endpoint_up:ratio", "avg", "diemcau_endpoint_up"), "{{area}}")],
           "percentunit", AREA_HELP, defaults={"min": 0, "max": 1}),
        table("Khu vực: số điểm cầu mất kết nối / tổng", 12, 0, 12, 9, [
            target(area_down_count(), ref="A", instant=True, fmt="table"),
            target(area_rule("diemcau_endpoints:count", "count", "diemcau_endpoint_up"),
                   ref="B", instant=True, fmt="table"),
            target(area_rule("diemcau_endpoint_up:ratio", "avg", "diemcau_endpoint_up"),
                   ref="C", instant=True, fmt="table"),
        ], AREA_HELP, transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "district": True},
                "indexByName": {"area": 0, "province": 1},
                "renameByName": {"area": "Khu vực", "province": "Tỉnh/thành",
                                 "Value #A": "Mất kết nối", "Value #B": "Tổng",
                                 "Value #C": "Tỷ lệ hoạt động"}}}]),
        table("Điểm cầu đang mất kết nối", 0, 9, 12, 10,
              [target(per_vantage(with_area('diemcau_endpoint_up{%s} == 0' % esel)), instant=True, fmt="table")],
              AREA_HELP, transformations=[ENDPOINT_TABLE_ORGANIZE],
              defaults={"links": [state_link]}),
        table("Trạng thái từng xã/phường", 12, 9, 12, 10,
              [target(per_vantage(with_area('diemcau_endpoint_state{%s}' % esel)), instant=True, fmt="table")],
              AREA_HELP, transformations=[ENDPOINT_TABLE_ORGANIZE],
              defaults={"mappings": STATE_MAPPINGS, "links": [state_link]}),
        ts("Độ trễ trung bình (RTT) theo khu vực", 0, 19, 8, 8,
           [target(area_rule("diemcau_endpoint_rtt_seconds:avg", "avg", "diemcau_endpoint_rtt_seconds"),
                   "{{area}}")], "s", AREA_HELP),
        ts("Jitter trung bình theo khu vực", 8, 19, 8, 8,
           [target(area_rule("diemcau_endpoint_jitter_seconds:avg", "avg", "diemcau_endpoint_jitter_seconds"),
                   "{{area}}")], "s", AREA_HELP),
        ts("Mất gói trung bình theo khu vực", 16, 19, 8, 8,
           [target(area_rule("diemcau_endpoint_loss_ratio:avg", "avg", "diemcau_endpoint_loss_ratio"),
                   "{{area}}")], "percentunit", AREA_HELP),
    ]
    return dashboard("diemcau-province", "Diemcau / Chi tiết tỉnh/thành",
                     "Khu vực (quận/huyện nếu còn, bản đồ 2021) và xã/phường của một tỉnh/thành.",
                     [v_datasource(), V_PROVINCE(multi=False), V_DISTRICT, V_CARRIER, V_VANTAGE], panels,
                     [link("Tổng quan", "diemcau-overview")])


def endpoint():
    e = 'endpoint="$endpoint"'
    # "commune, district, province" with the district left out where there is none.
    place = ('label_join(diemcau_endpoint_state{%s, district!=""}, "place", ", ", "commune", "district", "province")\n'
             'or\nlabel_join(diemcau_endpoint_state{%s, district=""}, "place", ", ", "commune", "province")' % (e, e))
    # Every vantage that probes the endpoint gives its own series, named in the legend.
    v = per_vantage
    lv = lambda name: name + " · {{vantage}}"  # noqa: E731
    panels = [
        panel("state-timeline", "Dòng thời gian trạng thái", 0, 0, 24, 5,
              [target(v(place), "{{place}} ({{carrier}}) · {{vantage}}")],
              VANTAGE_HELP,
              defaults={"mappings": STATE_MAPPINGS, "color": {"mode": "thresholds"},
                        "thresholds": {"mode": "absolute", "steps": [
                            {"color": "text", "value": None}, {"color": "green", "value": 1},
                            {"color": "orange", "value": 2}, {"color": "red", "value": 3}]}},
              options={"showValue": "never", "mergeValues": True}),
        stat("Trạng thái hiện tại", 0, 5, 6, 4, v('diemcau_endpoint_state{%s}' % e), legend="{{vantage}}",
             defaults={"mappings": STATE_MAPPINGS, "color": {"mode": "thresholds"},
                       "thresholds": {"mode": "absolute", "steps": [
                           {"color": "text", "value": None}, {"color": "green", "value": 1},
                           {"color": "orange", "value": 2}, {"color": "red", "value": 3}]}}),
        stat("Thời gian từ lần đổi trạng thái cuối", 6, 5, 6, 4,
             v('time() - diemcau_endpoint_last_transition_timestamp_seconds{%s}' % e), "blue", "s",
             legend="{{vantage}}"),
        stat("Số lần đổi trạng thái (24h)", 12, 5, 6, 4,
             v('increase(diemcau_endpoint_transitions_total{%s}[24h])' % e), "purple", legend="{{vantage}}"),
        stat("Bảo trì", 18, 5, 6, 4,
             'max(diemcau_endpoint_maintenance{%s}) or vector(0)' % e, "blue",
             defaults={"mappings": [{"type": "value", "options": {
                 "0": {"text": "Không"}, "1": {"text": "Đang bảo trì"}}}]}),
        ts("Độ trễ (RTT)", 0, 9, 8, 8, [
            target(v(mean_of("diemcau_endpoint_reply_rtt_seconds", e)), lv("RTT trung bình (mọi vòng)"), "A"),
            target(v('diemcau_endpoint_rtt_seconds{%s}' % e), lv("RTT vòng cuối lúc scrape"), "B")],
           "s", WINDOW_HELP),
        ts("Jitter", 8, 9, 8, 8, [
            target(v(mean_of("diemcau_endpoint_reply_jitter_seconds", e)), lv("jitter trung bình (mọi vòng)"), "A"),
            target(v('diemcau_endpoint_jitter_seconds{%s}' % e), lv("jitter vòng cuối lúc scrape"), "B")],
           "s", WINDOW_HELP),
        ts("Mất gói (loss)", 16, 9, 8, 8, [
            target(v('1 - rate(diemcau_endpoint_packets_received_total{%s}[$__rate_interval])'
                     ' / rate(diemcau_endpoint_packets_sent_total{%s}[$__rate_interval])' % (e, e)),
                   lv("loss (mọi vòng)"), "A"),
            target(v('diemcau_endpoint_loss_ratio{%s}' % e), lv("loss vòng cuối lúc scrape"), "B")],
           "percentunit", WINDOW_HELP, defaults={"min": 0, "max": 1}),
        ts("Chất lượng hội nghị (MOS)", 0, 24, 16, 8,
           [target(v('diemcau_endpoint_mos{%s}' % e), lv("MOS"))], None, MOS_HELP,
           defaults={"min": 1, "max": 4.5, "decimals": 2, "thresholds": MOS_THRESHOLDS,
                     "custom": {"thresholdsStyle": {"mode": "line"}}}),
        stat("Phút chất lượng kém (khoảng đang xem)", 16, 24, 8, 8,
             v('increase(diemcau_endpoint_poor_quality_seconds_total{%s}[$__range]) / 60' % e), "orange",
             legend="{{vantage}}",
             description="Số phút điểm cầu có MOS dưới ngưỡng [quality] poor_mos (mặc định %.1f) "
                         "trong khoảng thời gian đang xem." % POOR_MOS),
        ts("Gói gửi/nhận", 0, 17, 24, 7, [
            target(v('rate(diemcau_endpoint_packets_sent_total{%s}[$__rate_interval])' % e), lv("gửi"), "A"),
            target(v('rate(diemcau_endpoint_packets_received_total{%s}[$__rate_interval])' % e), lv("nhận"), "B"),
        ], "pps"),
    ]
    return dashboard("diemcau-endpoint", "Diemcau / Chi tiết điểm cầu",
                     "RTT, jitter, mất gói, chất lượng hội nghị (MOS) và trạng thái của một điểm cầu, "
                     "theo từng điểm đo.",
                     [v_datasource(), V_PROVINCE(), V_DISTRICT, V_CARRIER, V_ENDPOINT, V_VANTAGE], panels,
                     [link("Tỉnh/thành", "diemcau-province")])


def carrier_sla():
    pc = 'carrier=~"$carrier", province=~"$province"'
    avail = [target('province_carrier:diemcau_endpoint_up:ratio_avg%s{%s}' % (w, pc), ref=r,
                    instant=True, fmt="table") for w, r in (("1h", "A"), ("1d", "B"), ("30d", "C"))]
    burn_steps = {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                {"color": "orange", "value": 1},
                                                {"color": "red", "value": 14.4}]}
    panels = [
        table("Khả dụng theo tỉnh × nhà mạng (mục tiêu %.1f%%)" % (SLO_TARGET * 100), 0, 0, 24, 11, avail,
              "Khả dụng = tỷ lệ thời gian điểm cầu hoạt động (không tính thời gian bảo trì). "
              "Mục tiêu SLO: diemcau:slo_availability_target:ratio.",
              transformations=[{"id": "merge", "options": {}},
                               {"id": "organize", "options": {
                                   "excludeByName": {"Time": True},
                                   "renameByName": {"Value #A": "1 giờ", "Value #B": "1 ngày",
                                                    "Value #C": "30 ngày"}}}],
              defaults={"unit": "percentunit", "decimals": 3, "thresholds": RATIO_THRESHOLDS,
                        "custom": {"cellOptions": {"type": "color-background"}}}),
        stat("Ngân sách lỗi 30 ngày còn lại theo nhà mạng", 0, 11, 24, 5,
             '1 - (1 - avg_over_time(carrier:diemcau_endpoint_up:ratio{carrier=~"$carrier"}[30d]))'
             ' / on() group_left() (1 - diemcau:slo_availability_target:ratio)',
             unit="percentunit",
             defaults={"color": {"mode": "thresholds"}, "thresholds": {"mode": "absolute", "steps": [
                 {"color": "red", "value": None}, {"color": "orange", "value": 0.25},
                 {"color": "green", "value": 0.5}]}}),
        ts("Burn rate theo nhà mạng (1h, 6h, 1d, 3d)", 0, 16, 12, 9, [
            target('carrier:diemcau_slo_burn_rate:%s{carrier=~"$carrier"}' % w, "{{carrier}} %s" % w, r)
            for w, r in (("1h", "A"), ("6h", "B"), ("1d", "C"), ("3d", "D"))],
           description="Ngưỡng cảnh báo: page 14.4 (1h&5m) hoặc 6 (6h&30m); ticket 3 (1d&2h) hoặc 1 (3d&6h).",
           defaults={"thresholds": burn_steps, "custom": {"thresholdsStyle": {"mode": "line"}}}),
        ts("Burn rate 1h theo tỉnh/thành", 12, 16, 12, 9, [
            target('province:diemcau_slo_burn_rate:1h{province=~"$province"}', "{{province}}")],
           defaults={"thresholds": burn_steps, "custom": {"thresholdsStyle": {"mode": "line"}}}),
        ts("RTT p95 theo tỉnh × nhà mạng", 0, 25, 12, 8, [
            target('province_carrier:diemcau_region_rtt_seconds:p95_5m{%s}' % pc, "{{province}} {{carrier}}")], "s"),
        ts("Mất gói theo tỉnh × nhà mạng", 12, 25, 12, 8, [
            target('province_carrier:diemcau_packet_loss:ratio_rate5m{%s}' % pc, "{{province}} {{carrier}}")],
           "percentunit"),
        table("Phút chất lượng hội nghị kém theo điểm cầu (khoảng đang xem)", 0, 33, 24, 10,
              [target('sort_desc(%s)' % per_vantage(
                  'increase(diemcau_endpoint_poor_quality_seconds_total{%s}[$__range]) / 60 > 0' % pc),
                      instant=True, fmt="table")],
              "Số phút mỗi điểm cầu có MOS dưới ngưỡng [quality] poor_mos (mặc định %.1f), theo nhà mạng. "
              "Tổng theo nhà mạng từng giờ: carrier:diemcau_endpoint_poor_quality_seconds:increase1h." % POOR_MOS,
              transformations=[ENDPOINT_TABLE_ORGANIZE], defaults={"unit": "m", "decimals": 1}),
    ]
    return dashboard("diemcau-carrier-sla", "Diemcau / SLA nhà mạng",
                     "Khả dụng so với mục tiêu SLO và burn rate theo nhà mạng và tỉnh/thành.",
                     [v_datasource(), V_CARRIER, V_PROVINCE(), V_VANTAGE], panels,
                     [link("Tổng quan", "diemcau-overview")])


def prober():
    i = 'job="diemcau", instance=~"$instance"'
    panels = [
        stat("Scrape up", 0, 0, 4, 4, 'up{%s}' % i, defaults={
            "color": {"mode": "thresholds"}, "mappings": [{"type": "value", "options": {
                "0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}]}),
        stat("Ready", 4, 0, 4, 4, 'diemcau_ready{%s}' % i, defaults={
            "color": {"mode": "thresholds"}, "mappings": [{"type": "value", "options": {
                "0": {"text": "Chưa sẵn sàng", "color": "orange"}, "1": {"text": "Sẵn sàng", "color": "green"}}}]}),
        stat("Điểm cầu cấu hình", 8, 0, 4, 4, 'diemcau_endpoints{%s}' % i, "blue"),
        stat("Nạp cấu hình gần nhất", 12, 0, 4, 4, 'diemcau_config_last_reload_successful{%s}' % i, defaults={
            "color": {"mode": "thresholds"}, "mappings": [{"type": "value", "options": {
                "0": {"text": "LỖI", "color": "red"}, "1": {"text": "OK", "color": "green"}}}]}),
        stat("Từ lần nạp cấu hình thành công", 16, 0, 4, 4,
             'time() - diemcau_config_last_reload_success_timestamp_seconds{%s}' % i, "blue", "s"),
        table("Phiên bản", 20, 0, 4, 4, [target('diemcau_build_info{%s}' % i, instant=True, fmt="table")]),
        ts("Vòng đo hoàn thành / giây", 0, 4, 12, 8,
           [target('rate(diemcau_rounds_total{%s}[$__rate_interval])' % i, "{{instance}}")], "ops"),
        ts("Độ trễ lập lịch (scheduler lag)", 12, 4, 12, 8, [
            target('histogram_quantile(0.5, sum by (le) (rate(diemcau_scheduler_lag_seconds_bucket{%s}[$__rate_interval])))' % i, "p50", "A"),
            target('histogram_quantile(0.99, sum by (le) (rate(diemcau_scheduler_lag_seconds_bucket{%s}[$__rate_interval])))' % i, "p99", "B"),
        ], "s"),
        ts("Probe đang chạy (in flight)", 0, 12, 8, 8,
           [target('diemcau_probes_in_flight{%s}' % i, "{{instance}}")]),
        ts("Gói ICMP bị loại theo lý do", 8, 12, 8, 8,
           [target('sum by (reason) (rate(diemcau_icmp_packets_rejected_total{%s}[$__rate_interval]))' % i, "{{reason}}")],
           "pps"),
        ts("Chuyển trạng thái / giây", 16, 12, 8, 8,
           [target('sum by (from, to) (rate(diemcau_state_transitions_total{%s}[$__rate_interval]))' % i, "{{from}} → {{to}}")],
           "ops"),
        ts("CPU", 0, 20, 8, 7, [target('rate(process_cpu_seconds_total{%s}[$__rate_interval])' % i, "{{instance}}")], "percentunit"),
        ts("Bộ nhớ (RSS)", 8, 20, 8, 7, [target('process_resident_memory_bytes{%s}' % i, "{{instance}}")], "bytes"),
        ts("File descriptor đang mở", 16, 20, 8, 7, [
            target('process_open_fds{%s}' % i, "open", "A"),
            target('process_max_fds{%s}' % i, "max", "B")]),
    ]
    inst = v_query("instance", "Instance", 'label_values(up{job="diemcau"}, instance)')
    return dashboard("diemcau-prober", "Diemcau / Sức khoẻ bộ giám sát (prober self-health)",
                     "Tình trạng của chính tiến trình diemcau.",
                     [v_datasource(), inst], panels, [link("Tổng quan", "diemcau-overview")])


# ------------------------------------------------------------ where is the fault
DOMAIN_HELP = ("Miền lỗi (domain), từ truy vết đường đi lúc điểm cầu im lặng so với đường cơ sở học được khi "
               "nó còn trả lời: endpoint = tại chính điểm cầu (chặng cuối trước nó vẫn trả lời); path = một "
               "router trên đường truyền (failing_hop); monitor = mạng của chính máy giám sát; unknown = chưa "
               "có đường cơ sở để so.")
PATHS_BUDGET = 0.05  # keep in sync with the default [paths] budget


def paths():
    c = 'carrier=~"$carrier"'
    incident = 'diemcau_path_incident_endpoints{%s}' % c
    state_link = {"title": "Chi tiết điểm cầu",
                  "url": "/d/diemcau-endpoint?var-endpoint=${__data.fields.endpoint}&${__url_time_range}"}
    fault_organize = json.loads(json.dumps(ENDPOINT_TABLE_ORGANIZE))
    fault_organize["options"]["excludeByName"]["Value"] = True
    fault_organize["options"]["indexByName"].update({"domain": 5, "failing_hop": 6})
    fault_organize["options"]["renameByName"].update({"domain": "Miền lỗi", "failing_hop": "Chặng hỏng"})
    coverage = 'sum(diemcau_path_baselines) / sum(diemcau_endpoints)'
    cost = ('sum(rate(diemcau_path_trace_requests_total[5m]))\n'
            '/ sum(rate(diemcau_endpoint_packets_sent_total[5m]))')
    cost_steps = {"mode": "absolute", "steps": [
        {"color": "green", "value": None}, {"color": "orange", "value": PATHS_BUDGET},
        {"color": "red", "value": 2 * PATHS_BUDGET}]}
    coverage_steps = {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "orange", "value": 0.5}, {"color": "green", "value": 0.9}]}
    panels = [
        stat("Chặng mạng đang hỏng", 0, 0, 6, 4,
             'count(diemcau_path_incident_endpoints{domain="path", %s}) or vector(0)' % c, "red",
             description="Số router trên đường truyền đang hỏng (miền lỗi path), mỗi router một sự cố. "
                         "Cảnh báo DiemcauPathHopDown khi có từ 2 điểm cầu phía sau."),
        stat("Điểm cầu bị cắt sau chặng hỏng", 6, 0, 6, 4,
             'sum(diemcau_path_incident_endpoints{domain="path", %s}) or vector(0)' % c, "orange"),
        stat("Độ phủ đường cơ sở", 12, 0, 6, 4, coverage, unit="percentunit",
             description="Tỷ lệ điểm cầu đã biết đường đi cơ sở (truy vết khi còn trả lời). Điểm cầu chưa có "
                         "đường cơ sở khi hỏng chỉ được xếp vào miền lỗi unknown.",
             defaults={"color": {"mode": "thresholds"}, "thresholds": coverage_steps}),
        stat("Chi phí truy vết (5 phút)", 18, 0, 6, 4, cost, unit="percentunit",
             description="Gói ICMP giới hạn TTL mà truy vết gửi thêm, so với gói echo của các vòng đo thường, "
                         "trong 5 phút. [paths] budget (mặc định %d%%) giới hạn truy vết đường cơ sở; truy vết "
                         "lúc sự cố tính thêm." % round(PATHS_BUDGET * 100),
             defaults={"color": {"mode": "thresholds"}, "thresholds": cost_steps}),
        table("Sự cố theo chặng mạng", 0, 4, 12, 9,
              [target('sort_desc(%s)' % per_vantage(incident), instant=True, fmt="table")],
              "Mỗi dòng là một router đang hỏng và số điểm cầu không kết nối được phía sau nó (như mục "
              "\"Sự cố theo chặng mạng\" trên trang trạng thái và /api/v1/incidents). Nhà mạng: nhà mạng "
              "của đa số các điểm cầu đó. " + DOMAIN_HELP,
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "__name__": True, "job": True},
                  "indexByName": {"hop": 0, "carrier": 1, "domain": 2, "Value": 3, "vantage": 4, "instance": 5},
                  "renameByName": {"hop": "Chặng (router)", "carrier": "Nhà mạng", "domain": "Miền lỗi",
                                   "Value": "Điểm cầu bị cắt", "vantage": "Điểm đo",
                                   "instance": "Máy giám sát"}}}]),
        ts("Điểm cầu lỗi theo miền lỗi", 12, 4, 12, 9, [
            target('domain:diemcau_endpoint_faults:count', "{{domain}}", "A"),
            target('count(diemcau_endpoint_up == 0 unless on(job, instance, endpoint) diemcau_endpoint_fault_info %s)'
                   ' or vector(0)' % NOT_MAINT, "chưa định vị (mất kết nối, chưa truy vết)", "B"),
        ], description=DOMAIN_HELP + " Không tính điểm cầu đang bảo trì; toàn quốc, mọi nhà mạng."),
        table("Điểm cầu lỗi đã định vị", 0, 13, 24, 10,
              [target(per_vantage(with_area('diemcau_endpoint_fault_info{%s}' % c)), instant=True, fmt="table")],
              "Điểm cầu không hoạt động mà truy vết đã định vị được lỗi. " + DOMAIN_HELP + " " + AREA_HELP,
              transformations=[fault_organize], defaults={"links": [state_link]}),
        ts("Độ phủ đường cơ sở", 0, 23, 8, 8, [
            target(coverage, "đã biết / tổng điểm cầu", "A"),
        ], "percentunit", "Cần gần 100%: đường cơ sở được học khi điểm cầu trả lời, làm mới theo [paths] refresh.",
           defaults={"min": 0, "max": 1}),
        ts("Chi phí truy vết theo máy giám sát (5 phút)", 8, 23, 8, 8, [
            target('instance:diemcau_path_trace_requests_per_echo_request:ratio_rate5m', "{{instance}}")],
           "percentunit", "Gói truy vết / gói echo thường, trung bình 5 phút. Ngưỡng: [paths] budget.",
           defaults={"thresholds": cost_steps, "custom": {"thresholdsStyle": {"mode": "line"}}}),
        ts("Truy vết, định vị lỗi và đổi tuyến", 16, 23, 8, 8, [
            target('sum by (result) (rate(diemcau_path_traces_total[$__rate_interval]))', "truy vết {{result}}", "A"),
            target('sum by (domain) (rate(diemcau_path_findings_total[$__rate_interval]))', "định vị {{domain}}", "B"),
            target('sum(rate(diemcau_path_route_changes_total[$__rate_interval]))', "đổi tuyến", "C"),
        ], "ops", "Truy vết gửi đi (sent) hoặc bị từ chối vì hết ngân sách (refused); lỗi được định vị theo "
                  "miền; đường cơ sở thay đổi vì mạng đổi tuyến (không phải sự cố)."),
    ]
    return dashboard("diemcau-paths", "Diemcau / Vị trí sự cố (chặng mạng)",
                     "Lỗi nằm ở đâu: tại điểm cầu, trên đường truyền (router nào) hay ở máy giám sát.",
                     [v_datasource(), V_CARRIER, V_VANTAGE], panels,
                     [link("Tổng quan", "diemcau-overview"), link("Tỉnh/thành", "diemcau-province")])


DASHBOARDS = {"overview.json": overview, "province.json": province, "endpoint.json": endpoint,
              "carrier-sla.json": carrier_sla, "prober.json": prober, "paths.json": paths}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, fn in DASHBOARDS.items():
        text = json.dumps(fn(), ensure_ascii=False, indent=2) + "\n"
        path = os.path.join(OUT, name)
        if check:
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != text:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("out of date (run python3 grafana/generate.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
