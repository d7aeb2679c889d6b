//! `diemcau inventory generate`: a national-size example inventory for the demo, tests, docs and
//! the lab. The 2025 era uses the real communes of today's two-tier map (`data/vn_units_2025.csv`,
//! MIT, embedded); the 2021 era uses a 2021 units file the user points to (GPL, never embedded),
//! or real province names with synthetic districts and communes.

use std::io::Write;
use std::net::Ipv4Addr;

/// The 63 provinces and centrally-run cities before the July 2025 reform.
pub const PROVINCES_2021: [&str; 63] = [
    "Thành phố Hà Nội",
    "Tỉnh Hà Giang",
    "Tỉnh Cao Bằng",
    "Tỉnh Bắc Kạn",
    "Tỉnh Tuyên Quang",
    "Tỉnh Lào Cai",
    "Tỉnh Điện Biên",
    "Tỉnh Lai Châu",
    "Tỉnh Sơn La",
    "Tỉnh Yên Bái",
    "Tỉnh Hoà Bình",
    "Tỉnh Thái Nguyên",
    "Tỉnh Lạng Sơn",
    "Tỉnh Quảng Ninh",
    "Tỉnh Bắc Giang",
    "Tỉnh Phú Thọ",
    "Tỉnh Vĩnh Phúc",
    "Tỉnh Bắc Ninh",
    "Tỉnh Hải Dương",
    "Thành phố Hải Phòng",
    "Tỉnh Hưng Yên",
    "Tỉnh Thái Bình",
    "Tỉnh Hà Nam",
    "Tỉnh Nam Định",
    "Tỉnh Ninh Bình",
    "Tỉnh Thanh Hóa",
    "Tỉnh Nghệ An",
    "Tỉnh Hà Tĩnh",
    "Tỉnh Quảng Bình",
    "Tỉnh Quảng Trị",
    "Tỉnh Thừa Thiên Huế",
    "Thành phố Đà Nẵng",
    "Tỉnh Quảng Nam",
    "Tỉnh Quảng Ngãi",
    "Tỉnh Bình Định",
    "Tỉnh Phú Yên",
    "Tỉnh Khánh Hòa",
    "Tỉnh Ninh Thuận",
    "Tỉnh Bình Thuận",
    "Tỉnh Kon Tum",
    "Tỉnh Gia Lai",
    "Tỉnh Đắk Lắk",
    "Tỉnh Đắk Nông",
    "Tỉnh Lâm Đồng",
    "Tỉnh Bình Phước",
    "Tỉnh Tây Ninh",
    "Tỉnh Bình Dương",
    "Tỉnh Đồng Nai",
    "Tỉnh Bà Rịa - Vũng Tàu",
    "Thành phố Hồ Chí Minh",
    "Tỉnh Long An",
    "Tỉnh Tiền Giang",
    "Tỉnh Bến Tre",
    "Tỉnh Trà Vinh",
    "Tỉnh Vĩnh Long",
    "Tỉnh Đồng Tháp",
    "Tỉnh An Giang",
    "Tỉnh Kiên Giang",
    "Thành phố Cần Thơ",
    "Tỉnh Hậu Giang",
    "Tỉnh Sóc Trăng",
    "Tỉnh Bạc Liêu",
    "Tỉnh Cà Mau",
];

/// The 34 provinces and centrally-run cities since 1 July 2025.
pub const PROVINCES_2025: [&str; 34] = [
    "Thành phố Hà Nội",
    "Tỉnh Cao Bằng",
    "Tỉnh Tuyên Quang",
    "Tỉnh Điện Biên",
    "Tỉnh Lai Châu",
    "Tỉnh Sơn La",
    "Tỉnh Lào Cai",
    "Tỉnh Thái Nguyên",
    "Tỉnh Lạng Sơn",
    "Tỉnh Quảng Ninh",
    "Tỉnh Bắc Ninh",
    "Tỉnh Phú Thọ",
    "Thành phố Hải Phòng",
    "Tỉnh Hưng Yên",
    "Tỉnh Ninh Bình",
    "Tỉnh Thanh Hóa",
    "Tỉnh Nghệ An",
    "Tỉnh Hà Tĩnh",
    "Tỉnh Quảng Trị",
    "Thành phố Huế",
    "Thành phố Đà Nẵng",
    "Tỉnh Quảng Ngãi",
    "Tỉnh Gia Lai",
    "Tỉnh Khánh Hòa",
    "Tỉnh Đắk Lắk",
    "Tỉnh Lâm Đồng",
    "Tỉnh Đồng Nai",
    "Thành phố Hồ Chí Minh",
    "Tỉnh Tây Ninh",
    "Tỉnh Đồng Tháp",
    "Tỉnh Vĩnh Long",
    "Tỉnh An Giang",
    "Thành phố Cần Thơ",
    "Tỉnh Cà Mau",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Era {
    /// 63 provinces with districts (2021: ~10,600 communes).
    #[value(name = "2021")]
    Y2021,
    /// 34 provinces, no districts (since July 2025: 3,321 communes).
    #[value(name = "2025")]
    Y2025,
}

pub struct GenerateOptions {
    pub era: Era,
    /// Total endpoints, spread over the provinces.
    pub endpoints: usize,
    /// First address; following endpoints take the next addresses.
    pub first_address: Ipv4Addr,
    /// A units CSV to take the communes from (for 2021: dvhcvn's 2021 list with districts);
    /// `None` = the embedded 2025 list, or synthetic 2021 units.
    pub units: Option<String>,
}

impl GenerateOptions {
    pub fn default_endpoints(era: Era) -> usize {
        match era {
            Era::Y2021 => 10_599,
            Era::Y2025 => 3_321,
        }
    }
}

/// The 34 provinces and 3,321 communes since 1 July 2025 (see `data/README.md`).
pub const UNITS_2025: &str = include_str!("../../data/vn_units_2025.csv");

/// Communes per synthetic district (pre-2025 districts averaged ~15 communes).
const COMMUNES_PER_DISTRICT: usize = 15;

/// One commune-level unit to put an endpoint in.
struct Unit {
    province_code: String,
    province: String,
    district: Option<String>,
    commune_code: String,
    commune: String,
}

/// Reads a units CSV: the 2025 columns (`province_code,province_name,commune_code,commune_name`)
/// or the 2021 ones (with `district_name`). Errors name the line.
fn read_units(text: &str) -> std::io::Result<Vec<Unit>> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut reader = csv::Reader::from_reader(text.strip_prefix('\u{feff}').unwrap_or(text).as_bytes());
    let header = reader
        .headers()
        .map_err(|e| bad(format!("units file header: {e}")))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(pc), Some(pn), Some(cc), Some(cn)) = (
        col("province_code"),
        col("province_name"),
        col("commune_code"),
        col("commune_name"),
    ) else {
        return Err(bad(
            "units file: the header needs province_code, province_name, commune_code, commune_name (and district_name for 2021)".into(),
        ));
    };
    let dn = col("district_name");
    let mut units = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let r = record.map_err(|e| bad(format!("units file line {}: {e}", i + 2)))?;
        let get = |c: usize| r.get(c).unwrap_or("").trim().to_string();
        units.push(Unit {
            province_code: get(pc),
            province: get(pn),
            district: dn.map(get).filter(|d| !d.is_empty()),
            commune_code: get(cc),
            commune: get(cn),
        });
    }
    if units.is_empty() {
        return Err(bad("units file has no rows".into()));
    }
    Ok(units)
}

/// Synthetic 2021 units: the 63 real provinces, districts of 15 communes.
fn synthetic_2021(endpoints: usize) -> Vec<Unit> {
    let mut units = Vec::new();
    for (pi, province) in PROVINCES_2021.iter().enumerate() {
        let count = endpoints / PROVINCES_2021.len() + usize::from(pi < endpoints % PROVINCES_2021.len());
        for c in 0..count {
            let d = c / COMMUNES_PER_DISTRICT + 1;
            units.push(Unit {
                province_code: format!("{:02}", pi + 1),
                province: province.to_string(),
                district: Some(if d.is_multiple_of(4) {
                    format!("Quận {d}")
                } else {
                    format!("Huyện {d}")
                }),
                commune_code: format!("{:05}", c + 1),
                commune: match c % 5 {
                    0 => format!("Phường {}", c + 1),
                    _ => format!("Xã {}", c + 1),
                },
            });
        }
    }
    units
}

/// Takes `n` units province by province in turn, so every province is present even in a small
/// inventory; past the list's end, communes get a second endpoint ("…-2"), and so on.
fn spread(units: &[Unit], n: usize) -> Vec<(&Unit, usize)> {
    let mut provinces: Vec<Vec<&Unit>> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for u in units {
        let i = *index.entry(&u.province).or_insert_with(|| {
            provinces.push(Vec::new());
            provinces.len() - 1
        });
        provinces[i].push(u);
    }
    let mut out = Vec::with_capacity(n);
    let mut round = 0;
    while out.len() < n {
        for list in &provinces {
            if let Some(u) = list.get(round) {
                out.push((*u, 1));
            }
        }
        round += 1;
        if round >= provinces.iter().map(Vec::len).max().unwrap_or(0) {
            break;
        }
    }
    let mut copy = 2;
    while out.len() < n {
        let extra: Vec<(&Unit, usize)> = units.iter().map(|u| (u, copy)).collect();
        out.extend(extra);
        copy += 1;
    }
    out.truncate(n);
    // Back in file order (province, then commune), which reads naturally in the CSV.
    out.sort_by_key(|(u, copy)| (index[u.province.as_str()], u.commune_code.clone(), *copy));
    out
}

/// Writes the CSV. Carriers alternate in blocks of 15 communes within a province, so that one
/// carrier's outage in a province is one group. The 2025 inventory has no district column.
pub fn generate(opts: &GenerateOptions, out: &mut dyn Write) -> std::io::Result<()> {
    let units = match (&opts.units, opts.era) {
        (Some(path), _) => read_units(&super::file::read_regular_text(
            std::path::Path::new(path),
            super::file::MAX_INVENTORY_BYTES,
        )?)?,
        (None, Era::Y2025) => read_units(UNITS_2025)?,
        (None, Era::Y2021) => synthetic_2021(opts.endpoints),
    };
    let with_district = units.iter().any(|u| u.district.is_some());
    if with_district {
        writeln!(out, "id,province,district,commune,carrier,address")?;
    } else {
        writeln!(out, "id,province,commune,carrier,address")?;
    }
    let base = u32::from(opts.first_address);
    let mut ordinal_in_province: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (n, (u, copy)) in spread(&units, opts.endpoints).into_iter().enumerate() {
        let k = ordinal_in_province.entry(&u.province).or_default();
        let carrier = if (*k / COMMUNES_PER_DISTRICT).is_multiple_of(2) {
            "VNPT"
        } else {
            "Viettel"
        };
        *k += 1;
        let id = match copy {
            1 => format!("VN{}-{}", u.province_code, u.commune_code),
            c => format!("VN{}-{}-{c}", u.province_code, u.commune_code),
        };
        let address = Ipv4Addr::from(base.wrapping_add(n as u32));
        let (province, commune) = (csv_field(&u.province), csv_field(&u.commune));
        match (&u.district, with_district) {
            (_, false) => writeln!(out, "{id},{province},{commune},{carrier},{address}")?,
            (d, true) => {
                let d = csv_field(d.as_deref().unwrap_or(""));
                writeln!(out, "{id},{province},{d},{commune},{carrier},{address}")?
            }
        }
    }
    Ok(())
}

/// Quotes a CSV field that needs it (official names contain no commas today; stay safe).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_exact_count_with_every_province() {
        let mut out = Vec::new();
        let opts = GenerateOptions {
            era: Era::Y2025,
            endpoints: 3321,
            first_address: Ipv4Addr::new(127, 16, 0, 1),
            units: None,
        };
        generate(&opts, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3322);
        for p in PROVINCES_2025 {
            assert!(text.contains(p), "{p}");
        }
        assert!(text.lines().last().unwrap().ends_with(",127.16.12.249"));
        // Today's map: real communes, no district column.
        assert!(text.starts_with("id,province,commune,carrier,address\n"));
        for commune in ["Phường Biên Hòa", "Đặc khu Phú Quốc", "Xã Tân Phú"] {
            assert!(text.contains(&format!(",{commune},")), "{commune}");
        }
        let ids: std::collections::HashSet<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(ids.len(), 3321, "ids are unique");
    }

    #[test]
    fn small_inventories_keep_every_province_and_large_ones_repeat_communes() {
        let generated = |era, endpoints| {
            let mut out = Vec::new();
            let opts = GenerateOptions {
                era,
                endpoints,
                first_address: Ipv4Addr::new(127, 16, 0, 1),
                units: None,
            };
            generate(&opts, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let small = generated(Era::Y2025, 40);
        for p in PROVINCES_2025 {
            assert!(small.contains(p), "{p}");
        }
        let large = generated(Era::Y2025, 5000);
        assert_eq!(large.lines().count(), 5001);
        let ids: std::collections::HashSet<&str> =
            large.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(ids.len(), 5000, "repeated communes get their own ids");
        let old = generated(Era::Y2021, 200);
        assert!(old.starts_with("id,province,district,commune,carrier,address\n"));
    }
}
