//! Tags, checked or dropped before a compressed file reaches symphonia.
//!
//! symphonia 0.5.5 sizes buffers by the lengths that tags declare (an ID3v2
//! frame, a FLAC picture, a Vorbis comment) before it reads them, so a few
//! flipped bits ask for gigabytes and the allocation failure aborts the
//! process. No tag is needed to decode audio: ID3v2 tags and FLAC metadata
//! blocks other than STREAMINFO are dropped here, after checking that each
//! fits in the file, and the lengths inside a Vorbis comment header are
//! checked against the packet that holds them.

use super::Problem;

/// `bytes` without what would be read but not used.
pub(super) fn strip(bytes: Vec<u8>, ext: &str) -> Problem<Vec<u8>> {
    match ext {
        "mp3" => strip_id3v2(bytes),
        "flac" => strip_flac_metadata(bytes),
        "ogg" => check_vorbis_comments(&bytes).map(|()| bytes),
        _ => Ok(bytes),
    }
}

/// Drop the ID3v2 tags at the start of an MP3 (there may be several).
fn strip_id3v2(bytes: Vec<u8>) -> Problem<Vec<u8>> {
    let mut pos = 0;
    while bytes[pos..].starts_with(b"ID3") {
        let header = bytes
            .get(pos..pos + 10)
            .ok_or("truncated ID3v2 tag: its 10-byte header is cut off")?;
        // Four 7-bit bytes ("syncsafe"); a set top bit means it is not a size.
        if header[6..10].iter().any(|&b| b & 0x80 != 0) {
            return Err("corrupt ID3v2 tag: its size is not a syncsafe integer".into());
        }
        let size = header[6..10]
            .iter()
            .fold(0usize, |n, &b| n << 7 | usize::from(b));
        let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
        let end = pos + 10 + size + footer;
        if end > bytes.len() {
            return Err(format!(
                "truncated or corrupt ID3v2 tag: it declares {} bytes, the file has {}",
                10 + size + footer,
                bytes.len() - pos
            ));
        }
        pos = end;
    }
    Ok(if pos == 0 {
        bytes
    } else {
        bytes[pos..].to_vec()
    })
}

/// Keep only the STREAMINFO block of a FLAC file's metadata.
fn strip_flac_metadata(bytes: Vec<u8>) -> Problem<Vec<u8>> {
    let mut pos = 4;
    let mut streaminfo = None;
    loop {
        let header = bytes
            .get(pos..pos + 4)
            .ok_or("truncated FLAC metadata: a block header is cut off")?;
        let (last, kind) = (header[0] & 0x80 != 0, header[0] & 0x7F);
        let len =
            (usize::from(header[1]) << 16) | (usize::from(header[2]) << 8) | usize::from(header[3]);
        let body = pos + 4;
        if body + len > bytes.len() {
            return Err(format!(
                "truncated or corrupt FLAC metadata: a block of type {kind} declares {len} bytes, {} remain",
                bytes.len() - body
            ));
        }
        if kind == 127 {
            return Err("corrupt FLAC metadata: block type 127 is invalid".into());
        }
        if kind == 0 && streaminfo.is_none() {
            streaminfo = Some(body..body + len);
        }
        pos = body + len;
        if last {
            break;
        }
    }
    // Without STREAMINFO the file is left for symphonia to refuse.
    let Some(info) = streaminfo else {
        return Ok(bytes);
    };
    let len = info.len();
    let mut out = Vec::with_capacity(8 + len + bytes.len() - pos);
    out.extend_from_slice(b"fLaC");
    out.extend_from_slice(&[0x80, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    out.extend_from_slice(&bytes[info]);
    out.extend_from_slice(&bytes[pos..]);
    Ok(out)
}

/// The Ogg page checksum: CRC-32 with polynomial 0x04C11DB7, not reflected,
/// initial value 0, over the page with its CRC field zeroed (RFC 3533).
fn ogg_crc(page: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut r = (i as u32) << 24;
        for _ in 0..8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
        }
        *t = r;
    }
    page.iter().enumerate().fold(0u32, |crc, (i, &b)| {
        let b = if (22..26).contains(&i) { 0 } else { b };
        (crc << 8) ^ table[usize::from((crc >> 24) as u8 ^ b)]
    })
}

/// Every packet of every logical stream, reassembled from the pages whose
/// checksum holds (the demuxer drops the others, so they are skipped here
/// too, and the packets are the ones the decoder will see).
fn packets(b: &[u8]) -> Vec<Vec<u8>> {
    let mut done = Vec::new();
    let mut open: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    let mut pos = 0;
    while pos + 27 <= b.len() {
        if &b[pos..pos + 4] != b"OggS" {
            pos += 1;
            continue;
        }
        let n = usize::from(b[pos + 26]);
        let Some(table) = b.get(pos + 27..pos + 27 + n) else {
            break;
        };
        let end = pos + 27 + n + table.iter().map(|&x| usize::from(x)).sum::<usize>();
        let Some(page) = b.get(pos..end) else {
            break;
        };
        if ogg_crc(page) != u32::from_le_bytes([page[22], page[23], page[24], page[25]]) {
            pos += 1;
            continue;
        }
        let serial: [u8; 4] = page[14..18].try_into().expect("4 bytes");
        let k = match open.iter().position(|(s, _)| *s == serial) {
            Some(k) => k,
            None => {
                open.push((serial, Vec::new()));
                open.len() - 1
            }
        };
        let mut at = 27 + n;
        for &seg in table {
            let next = at + usize::from(seg);
            open[k].1.extend_from_slice(&page[at..next]);
            // A segment shorter than 255 bytes ends its packet.
            if seg < 255 {
                done.push(std::mem::take(&mut open[k].1));
            }
            at = next;
        }
        pos = end;
    }
    done.extend(open.into_iter().map(|(_, p)| p));
    done
}

/// Check the lengths of every Vorbis comment header in the file.
fn check_vorbis_comments(b: &[u8]) -> Problem<()> {
    packets(b)
        .iter()
        .filter(|p| p.starts_with(b"\x03vorbis"))
        .try_for_each(|p| check_comment_packet(p))
}

/// Check every length in a Vorbis comment header against its packet.
fn check_comment_packet(p: &[u8]) -> Problem<()> {
    let bad = |what: String| {
        Err(format!(
            "corrupt Ogg stream: in its Vorbis comment header, {what}"
        ))
    };
    let mut at = 7;
    let read_len = |at: &mut usize, what: &str| -> Problem<usize> {
        let Some(v) = p.get(*at..*at + 4) else {
            return bad(format!("the {what} is cut off"));
        };
        *at += 4;
        let n = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize;
        if n > p.len() - *at {
            return bad(format!(
                "the {what} is {n} but only {} bytes follow",
                p.len() - *at
            ));
        }
        Ok(n)
    };
    let vendor = read_len(&mut at, "vendor string length")?;
    at += vendor;
    let count = read_len(&mut at, "comment count")?;
    for _ in 0..count {
        let n = read_len(&mut at, "comment length")?;
        at += n;
    }
    Ok(())
}
