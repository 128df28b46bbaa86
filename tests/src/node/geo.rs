//! GeoJSON particles as the server stores and returns them: a flags byte, a big-endian cell
//! count, that many S2 cell ids (8 bytes, big-endian), then the JSON text. For a `Point` the
//! server keeps the one leaf cell (level 30) that holds it; that cell is computed here with
//! the public S2 cell-id scheme (cube face, quadratic projection, Hilbert curve position).
//! Regions (polygons, circles) would carry a covering the node does not compute: they are
//! stored with the cells the client sent (none).

/// Level of a leaf cell: 30 bits of i and j per face.
const MAX_LEVEL: u32 = 30;
const MAX_SIZE: f64 = (1u64 << MAX_LEVEL) as f64;
const LOOKUP_BITS: u32 = 4;
const SWAP_MASK: usize = 1;
const INVERT_MASK: usize = 2;

/// Sub-cell positions (i, j bits) in Hilbert order for each orientation.
const POS_TO_IJ: [[usize; 4]; 4] = [[0, 1, 3, 2], [0, 2, 3, 1], [3, 2, 0, 1], [3, 1, 0, 2]];
const POS_TO_ORIENTATION: [usize; 4] = [SWAP_MASK, 0, 0, INVERT_MASK | SWAP_MASK];

/// `(i, j, orientation)` of a 4-level block → `(Hilbert position, orientation)`.
fn lookup_pos() -> &'static [u16; 1 << (2 * LOOKUP_BITS + 2)] {
    static TABLE: std::sync::OnceLock<[u16; 1 << (2 * LOOKUP_BITS + 2)]> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u16; 1 << (2 * LOOKUP_BITS + 2)];
        for o in 0..4 {
            fill(&mut t, 0, 0, 0, o, 0, o);
        }
        t
    })
}

fn fill(t: &mut [u16], level: u32, i: usize, j: usize, orig: usize, pos: usize, o: usize) {
    if level == LOOKUP_BITS {
        let ij = (i << LOOKUP_BITS) + j;
        t[(ij << 2) + orig] = ((pos << 2) + o) as u16;
        return;
    }
    let r = POS_TO_IJ[o];
    for (k, sub) in r.iter().enumerate() {
        fill(
            t,
            level + 1,
            (i << 1) + (sub >> 1),
            (j << 1) + (sub & 1),
            orig,
            (pos << 2) + k,
            o ^ POS_TO_ORIENTATION[k],
        );
    }
}

/// The quadratic projection from a face coordinate u in [-1, 1] to s in [0, 1].
fn uv_to_st(u: f64) -> f64 {
    if u >= 0.0 {
        0.5 * (1.0 + 3.0 * u).sqrt()
    } else {
        1.0 - 0.5 * (1.0 - 3.0 * u).sqrt()
    }
}

fn st_to_ij(s: f64) -> usize {
    ((MAX_SIZE * s).floor() as i64).clamp(0, MAX_SIZE as i64 - 1) as usize
}

/// The S2 leaf cell id of a point given in degrees.
pub fn leaf_cell(lat_deg: f64, lng_deg: f64) -> u64 {
    let (lat, lng) = (lat_deg.to_radians(), lng_deg.to_radians());
    let (x, y, z) = (lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin());
    let (ax, ay, az) = (x.abs(), y.abs(), z.abs());
    let face = if ax >= ay && ax >= az {
        if x < 0.0 { 3 } else { 0 }
    } else if ay >= az {
        if y < 0.0 { 4 } else { 1 }
    } else if z < 0.0 {
        5
    } else {
        2
    };
    let (u, v) = match face {
        0 => (y / x, z / x),
        1 => (-x / y, z / y),
        2 => (-x / z, -y / z),
        3 => (z / x, y / x),
        4 => (z / y, -x / y),
        _ => (-y / z, -x / z),
    };
    let (i, j) = (st_to_ij(uv_to_st(u)), st_to_ij(uv_to_st(v)));
    let table = lookup_pos();
    let mut n: u64 = (face as u64) << (2 * MAX_LEVEL);
    let mut bits = face & SWAP_MASK;
    let mask = (1 << LOOKUP_BITS) - 1;
    for k in (0..8).rev() {
        bits += ((i >> (k * LOOKUP_BITS)) & mask) << (LOOKUP_BITS + 2);
        bits += ((j >> (k * LOOKUP_BITS)) & mask) << 2;
        bits = usize::from(table[bits]);
        n |= ((bits >> 2) as u64) << (k * 2 * LOOKUP_BITS);
        bits &= SWAP_MASK | INVERT_MASK;
    }
    n * 2 + 1
}

/// The particle the server stores for a GeoJSON bin the client wrote (flags, cell count and
/// cells the client sent are replaced). Anything but a valid `Point` is kept as sent.
pub fn stored_particle(data: &[u8]) -> Vec<u8> {
    let json = super::wire::geo_json_text(data);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return data.to_vec();
    };
    let point = v.get("type").and_then(|t| t.as_str()) == Some("Point");
    let coords = v
        .get("coordinates")
        .and_then(|c| c.as_array())
        .filter(|c| c.len() == 2)
        .and_then(|c| Some((c[0].as_f64()?, c[1].as_f64()?)));
    match coords {
        Some((lng, lat)) if point && (-90.0..=90.0).contains(&lat) => {
            let mut out = vec![0, 0, 1];
            out.extend_from_slice(&leaf_cell(lat, lng).to_be_bytes());
            out.extend_from_slice(json);
            out
        }
        _ => data.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_gets_the_leaf_cell_a_server_gave_it() {
        // Recorded from Aerospike 8.1.2 for {"type":"Point","coordinates":[-122.0,37.5]}.
        assert_eq!(leaf_cell(37.5, -122.0), 0x808f_b8a2_4795_4393);
        let json = br#"{"type":"Point","coordinates":[-122.0,37.5]}"#;
        let sent = [&[0u8, 0, 0][..], json].concat();
        let stored = stored_particle(&sent);
        assert_eq!(&stored[..3], &[0, 0, 1]);
        assert_eq!(&stored[11..], json);
        // Not a point: kept as sent.
        let poly = [&[0u8, 0, 0][..], br#"{"type":"Polygon","coordinates":[]}"#].concat();
        assert_eq!(stored_particle(&poly), poly);
    }
}
