//! Province centroids for dashboard maps (`[geo] province_centroids`), exported as
//! `diemcau_province_info{province,lat,lon} 1`. Read at run time from a file the operator
//! provides; the project ships no coordinates.

use std::path::Path;

use crate::domain::diag::{LoadError, Problem};

/// Reads `province` (or `province_name`), `lat`, `lon` columns; other columns are ignored.
pub fn read_centroids(file: &Path, bytes: &[u8], errors: &mut LoadError) -> Vec<(String, f64, f64)> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes));
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(
                Problem::at(file, 1, None, "header")
                    .says(format!("cannot be read: {e}"))
                    .fix("save the file as UTF-8 CSV"),
            );
            return Vec::new();
        }
    };
    let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.trim()));
    let (Some(p), Some(lat), Some(lon)) = (col(&["province", "province_name"]), col(&["lat"]), col(&["lon"])) else {
        errors.push(
            Problem::at(file, 1, None, "header")
                .says("needs the columns province (or province_name), lat and lon")
                .fix("name the columns province,lat,lon"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut lines = super::inventory::CsvLines::new(bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes));
    for record in reader.records() {
        let Ok(record) = record else {
            errors.push(
                Problem::at(file, 0, None, "row")
                    .says("cannot be read")
                    .fix("correct the CSV syntax"),
            );
            continue;
        };
        let line = record.position().map_or(0, |p| lines.line_of(p));
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        match (field(lat).parse::<f64>(), field(lon).parse::<f64>()) {
            (Ok(a), Ok(o)) if (-90.0..=90.0).contains(&a) && (-180.0..=180.0).contains(&o) && !field(p).is_empty() => {
                out.push((field(p).to_string(), a, o))
            }
            _ => errors.push(
                Problem::at(file, line, None, "lat/lon")
                    .says("is not a province with a latitude and longitude in degrees")
                    .fix("write e.g. Thành phố Hà Nội,21.03,105.85"),
            ),
        }
    }
    out
}
