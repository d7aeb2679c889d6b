//! The inventory CSV: `id,province,district,commune,carrier,address`, UTF-8, one endpoint a row.
//!
//! Every row is checked and every problem reported with its file, line and column name. Host
//! names are not resolved while loading (see [`into_endpoints`]): a slow or failing resolver
//! never delays or fails a load.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::MAX_IN_FLIGHT_PER_FAMILY;
use super::checks::ChecksConfig;
use crate::domain::diag::{LoadError, Problem};
use crate::domain::{Endpoint, EndpointId, Labels, Resolution};

/// The columns every inventory has, in any order. The header names are a contract.
pub const REQUIRED_COLUMNS: [&str; 5] = ["id", "province", "commune", "carrier", "address"];

/// Optional columns: `district` for the 2021 three-tier map (absent or empty in today's
/// two-tier map of provinces and communes); `checks` lists the endpoint's service checks
/// (`sip;web`), overriding the `[checks]` defaults for its carrier.
pub const OPTIONAL_COLUMNS: [&str; 2] = ["district", "checks"];

/// Which administrative map a file follows, for `diemcau check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapModel {
    /// Province → commune (since 1 July 2025): no district on any row.
    TwoTier,
    /// Province → district → commune (the 2021 map): a district on every row.
    ThreeTier,
    /// Some rows with a district and some without.
    Mixed,
}

impl MapModel {
    /// The model of a set of rows.
    pub fn of<'a>(labels: impl IntoIterator<Item = &'a Labels>) -> Option<MapModel> {
        let (mut with, mut without) = (0usize, 0usize);
        for l in labels {
            if l.district.is_some() {
                with += 1;
            } else {
                without += 1;
            }
        }
        match (with, without) {
            (0, 0) => None,
            (_, 0) => Some(MapModel::ThreeTier),
            (0, _) => Some(MapModel::TwoTier),
            _ => Some(MapModel::Mixed),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            MapModel::TwoTier => "two-tier map (province → commune, since 1 July 2025)",
            MapModel::ThreeTier => "three-tier map (province → district → commune, 2021)",
            MapModel::Mixed => "mixed: some rows have a district, some do not",
        }
    }
}

/// An inventory row before host names are resolved.
#[derive(Clone, Debug)]
pub struct Row {
    pub line: usize,
    pub id: String,
    pub labels: Labels,
    pub address: RowAddress,
    pub checks: Arc<[u16]>,
}

#[derive(Clone, Debug)]
pub enum RowAddress {
    Literal(IpAddr),
    Host(String),
}

/// Where an id was first seen, to name both places in a duplicate error.
pub type SeenIds = HashMap<String, (std::path::PathBuf, usize)>;

/// Shares one allocation per distinct label value: 10,000 communes name only 63 provinces and
/// two carriers, and the daemon keeps labels for as long as it runs.
#[derive(Default)]
pub struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.0.get(s.as_str()) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.0.insert(a.clone());
        a
    }
}

/// Reads one inventory file's rows, appending problems to `errors`.
/// What rows need from the rest of the load: ids seen so far (duplicates across files), the
/// label interner, and the named checks a `checks` cell may list.
pub struct RowContext<'a> {
    pub seen: SeenIds,
    pub interner: Interner,
    pub checks: &'a ChecksConfig,
}

pub fn read_rows(file: &Path, bytes: &[u8], ctx: &mut RowContext<'_>, errors: &mut LoadError) -> Vec<Row> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(
                Problem::at(file, 1, None, "header")
                    .says(format!("cannot read the header row: {e}"))
                    .fix("the first line must be: id,province,district,commune,carrier,address"),
            );
            return Vec::new();
        }
    };
    let Some(columns) = column_indexes(file, &header, errors) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    let mut lines = CsvLines::new(bytes);
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_of(p));
                errors.push(csv_problem(file, line, &e));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_of(p));
        if let Some(row) = check_row(file, line, &columns, &record, ctx, errors) {
            rows.push(row);
        }
    }
    rows
}

/// The line a CSV record starts on, as an editor shows it. The csv crate's own line numbers
/// run one behind after every CRLF (the line ending of files saved by Excel), and its record
/// offsets point at the line ending before the record; this counts `\n`, `\r\n` and a lone
/// `\r` from the first byte after that ending.
pub(crate) struct CsvLines<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> CsvLines<'a> {
    /// Lines of `bytes`, the same slice the csv reader reads.
    pub(crate) fn new(bytes: &'a [u8]) -> CsvLines<'a> {
        CsvLines {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line of the record at `position`; positions must come in file order.
    pub(crate) fn line_of(&mut self, position: &csv::Position) -> usize {
        let b = self.bytes;
        let mut start = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(b.len());
        while start < b.len() && matches!(b[start], b'\r' | b'\n') {
            start += 1;
        }
        if start < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        for i in self.offset..start {
            if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.offset = start;
        self.line
    }
}

fn csv_problem(file: &Path, line: usize, e: &csv::Error) -> Problem {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => Problem::at(file, line, None, "row")
            .says(format!("has {len} fields, the header has {expected_len}"))
            .fix("give every row exactly the header's columns; quote values that contain commas"),
        csv::ErrorKind::Utf8 { .. } => Problem::at(file, line, None, "row")
            .says("is not valid UTF-8")
            .fix("save the file as UTF-8 (Vietnamese names must keep their diacritics)"),
        _ => Problem::at(file, line, None, "row")
            .says(format!("cannot be read: {e}"))
            .fix("correct the CSV syntax of this row"),
    }
}

struct Columns {
    id: usize,
    province: usize,
    district: Option<usize>,
    commune: usize,
    carrier: usize,
    address: usize,
    checks: Option<usize>,
}

fn column_indexes(file: &Path, header: &csv::StringRecord, errors: &mut LoadError) -> Option<Columns> {
    let mut found: HashMap<&str, usize> = HashMap::new();
    let mut ok = true;
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if !REQUIRED_COLUMNS.contains(&name) && !OPTIONAL_COLUMNS.contains(&name) {
            errors.push(
                Problem::at(file, 1, None, format!("column '{name}'"))
                    .says("is not an inventory column")
                    .fix("remove the column; allowed: id,province,commune,carrier,address and the optional district and checks"),
            );
            ok = false;
        } else if found.insert(name, i).is_some() {
            errors.push(
                Problem::at(file, 1, None, format!("column '{name}'"))
                    .says("appears twice in the header")
                    .fix("keep one column of each name"),
            );
            ok = false;
        }
    }
    for name in REQUIRED_COLUMNS {
        if !found.contains_key(name) {
            errors.push(
                Problem::at(file, 1, None, format!("column '{name}'"))
                    .says("is missing from the header")
                    .fix("the first line must be: id,province,commune,carrier,address (district optional, after province)"),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    Some(Columns {
        id: found["id"],
        province: found["province"],
        district: found.get("district").copied(),
        commune: found["commune"],
        carrier: found["carrier"],
        address: found["address"],
        checks: found.get("checks").copied(),
    })
}

fn check_row(
    file: &Path,
    line: usize,
    c: &Columns,
    record: &csv::StringRecord,
    ctx: &mut RowContext<'_>,
    errors: &mut LoadError,
) -> Option<Row> {
    let seen = &mut ctx.seen;
    let before = errors.problems.len();
    let mut field = |index: usize, name: &str| -> String {
        let value = record.get(index).unwrap_or("").trim().to_string();
        if value.is_empty() {
            errors.push(
                Problem::at(file, line, None, name)
                    .says("is empty")
                    .fix(format!("give every endpoint its {name}")),
            );
        }
        value
    };
    let id = field(c.id, "id");
    let province = field(c.province, "province");
    // Optional: absent column or empty cell = the two-tier map.
    let district = c
        .district
        .and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let commune = field(c.commune, "commune");
    let carrier = field(c.carrier, "carrier");
    let address = field(c.address, "address");

    if !id.is_empty() {
        if let Some(bad) = id
            .chars()
            .find(|ch| ch.is_whitespace() || ch.is_control() || *ch == '"')
        {
            errors.push(
                Problem::at(file, line, None, "id")
                    .says(format!("{id:?} contains the character {bad:?}"))
                    .fix("use letters, digits and punctuation such as - _ . : in ids"),
            );
        } else if let Some((first_file, first_line)) = seen.get(&id) {
            errors.push(
                Problem::at(file, line, None, "id")
                    .says(format!(
                        "duplicate id {id:?}, first used at {}:{first_line}",
                        first_file.display()
                    ))
                    .fix("give every endpoint its own id"),
            );
        } else {
            seen.insert(id.clone(), (file.to_path_buf(), line));
        }
    }
    let parsed = if address.is_empty() {
        None
    } else {
        parse_address(file, line, &address, errors)
    };
    let checks: Arc<[u16]> = match c
        .checks
        .and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => ctx.checks.for_carrier(&carrier).into(),
        Some(cell) => match ctx.checks.parse_list(cell) {
            Ok(ids) => ids.into(),
            Err(unknown) => {
                errors.push(
                    Problem::at(file, line, None, "checks")
                        .says(format!("names the unknown check {unknown:?}"))
                        .fix("define it as [check.NAME] in the config, or remove it from the cell"),
                );
                Arc::from([])
            }
        },
    };
    for (name, value) in [("province", &province), ("commune", &commune), ("carrier", &carrier)]
        .into_iter()
        .chain(district.as_ref().map(|d| ("district", d)))
    {
        if let Some(bad) = value.chars().find(|c| c.is_control()) {
            errors.push(
                Problem::at(file, line, None, name)
                    .says(format!("contains the control character {:?}", bad))
                    .fix("remove it: names are plain text (NUL, tabs and line breaks are not)"),
            );
        }
    }
    if errors.problems.len() > before {
        return None;
    }
    let interner = &mut ctx.interner;
    Some(Row {
        line,
        id,
        labels: Labels {
            province: interner.get(province),
            district: district.map(|d| interner.get(d)),
            commune: commune.into(),
            carrier: interner.get(carrier),
        },
        address: parsed?,
        checks,
    })
}

fn parse_address(file: &Path, line: usize, text: &str, errors: &mut LoadError) -> Option<RowAddress> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
            errors.push(
                Problem::at(file, line, None, "address")
                    .says(format!("{text} is not a unicast address"))
                    .fix("write the endpoint's own unicast address"),
            );
            return None;
        }
        return Some(RowAddress::Literal(ip));
    }
    if is_host_name(text) {
        return Some(RowAddress::Host(text.to_string()));
    }
    if let Some((ip, zone)) = text.split_once('%')
        && ip.parse::<std::net::Ipv6Addr>().is_ok()
    {
        errors.push(
            Problem::at(file, line, None, "address")
                .says(format!(
                    "{text:?} has the IPv6 zone id %{zone}, which diemcau does not support"
                ))
                .fix("write the endpoint's global IPv6 address (a link-local address needs one interface per probe)"),
        );
        return None;
    }
    errors.push(
        Problem::at(file, line, None, "address")
            .says(format!("{text:?} is neither an IPv4/IPv6 address nor a host name"))
            .fix("write an address such as 10.1.2.3 or 2001:db8::1, or a DNS name"),
    );
    None
}

/// RFC 1123 host name syntax: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && !s.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()))
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Where a host name is written, for `diemcau check`'s warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLine {
    pub file: std::path::PathBuf,
    pub line: usize,
    pub name: Arc<str>,
}

/// Turns rows into endpoints. Host names are not resolved here: such an endpoint starts without
/// an address ([`Resolution::Pending`]) and is probed once its name resolves (see
/// [`super::resolve`]). Where each name is written goes to `hosts`.
pub fn into_endpoints(file: &Path, rows: Vec<Row>, hosts: &mut Vec<HostLine>) -> Vec<Arc<Endpoint>> {
    rows.into_iter()
        .map(|row| {
            let (address, host, resolution) = match row.address {
                RowAddress::Literal(ip) => (Some(ip), None, Resolution::Literal),
                RowAddress::Host(name) => {
                    let name = Arc::<str>::from(name);
                    hosts.push(HostLine {
                        file: file.to_path_buf(),
                        line: row.line,
                        name: name.clone(),
                    });
                    (None, Some(name), Resolution::Pending)
                }
            };
            Arc::new(Endpoint {
                id: EndpointId(row.id.into()),
                labels: row.labels,
                address,
                host,
                resolution,
                checks: row.checks,
            })
        })
        .collect()
}

/// Sequence numbers must stay unique among requests in flight on one socket. A host name may
/// resolve to either family, so it counts for both.
pub(super) fn check_capacity(
    file: &Path,
    probe: &super::ProbeConfig,
    endpoints: &[Arc<Endpoint>],
    errors: &mut LoadError,
) {
    let v4 = endpoints
        .iter()
        .filter(|e| e.address.is_some_and(|a| a.is_ipv4()))
        .count();
    let v6 = endpoints
        .iter()
        .filter(|e| e.address.is_some_and(|a| a.is_ipv6()))
        .count();
    let names = endpoints.len() - v4 - v6;
    let most = (v4.max(v6) + names) as f64;
    let in_flight = most * f64::from(probe.packets) * probe.timeout.as_secs_f64() / probe.interval.as_secs_f64();
    if in_flight > MAX_IN_FLIGHT_PER_FAMILY {
        errors.push(
            Problem::at(file, 0, None, "probe")
                .says(format!(
                    "{most} endpoints × {} packets per {:?} with a {:?} timeout keep about {in_flight:.0} requests in flight; at most {MAX_IN_FLIGHT_PER_FAMILY} fit in the 16-bit ICMP sequence space",
                    probe.packets, probe.interval, probe.timeout
                ))
                .fix("lengthen probe.interval, or shorten probe.timeout, or send fewer probe.packets"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the inventory_csv fuzz target: after a CRLF header the csv crate numbered the
    /// first row 1, and every row of a CRLF file one line too early.
    #[test]
    fn rows_are_numbered_as_an_editor_shows_them_whatever_the_line_endings() {
        let checks = ChecksConfig::default();
        // (lines of the rows read, lines of the problems)
        let lines = |csv: String| -> (Vec<usize>, Vec<usize>) {
            let mut ctx = RowContext {
                seen: SeenIds::new(),
                interner: Interner::default(),
                checks: &checks,
            };
            let mut errors = LoadError::default();
            let rows = read_rows(Path::new("i.csv"), csv.as_bytes(), &mut ctx, &mut errors);
            let problems = errors.problems.iter().map(|p| p.line).collect();
            (rows.iter().map(|r| r.line).collect(), problems)
        };
        let header = "id,province,commune,carrier,address";
        let (a, b) = ("A,P,C,VNPT,10.0.0.1", "B,P,C,VNPT,10.0.0.2");
        for eol in ["\n", "\r\n", "\r"] {
            assert_eq!(
                lines(format!("{header}{eol}{a}{eol}{b}{eol}")),
                (vec![2, 3], vec![]),
                "{eol:?}"
            );
            // A blank line counts; a quoted value over two lines (refused: a line break in a
            // name) counts two, and the short row after it is on line 6.
            let text = format!("{header}{eol}{eol}{a}{eol}Q,P,\"C{eol}D\",VNPT,10.0.0.9{eol}short{eol}{b}");
            assert_eq!(lines(text), (vec![3, 7], vec![4, 6]), "{eol:?}");
        }
        // The fuzz input's shape: a BOM, a CRLF header, then LF rows.
        assert_eq!(lines(format!("\u{feff}{header}\r\n{a}\n{b}\n")), (vec![2, 3], vec![]));
    }

    #[test]
    fn host_name_syntax() {
        assert!(is_host_name("dc-01.hcm.vnpt.vn"));
        assert!(is_host_name("localhost"));
        assert!(!is_host_name("10.0.0.300"));
        assert!(!is_host_name("bad_name.vn"));
        assert!(!is_host_name("-x.vn"));
        assert!(!is_host_name("a..b"));
    }
}
