//! WAV files made byte by byte, so a test can say exactly what is in (or
//! wrong with) its input.

/// One RIFF chunk with its true size (and the pad byte an odd size needs).
pub fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    chunk_claiming(id, body.len() as u32, body)
}

/// One RIFF chunk whose size field says `size`, whatever the body holds.
pub fn chunk_claiming(id: &[u8; 4], size: u32, body: &[u8]) -> Vec<u8> {
    let mut c = id.to_vec();
    c.extend(size.to_le_bytes());
    c.extend(body);
    if body.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// A RIFF/WAVE file from ready-made chunks.
pub fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut f = b"RIFF".to_vec();
    f.extend((body.len() as u32 + 4).to_le_bytes());
    f.extend(b"WAVE");
    f.extend(body);
    f
}

/// A 16-byte `fmt ` body with every field given explicitly (`tag` 1 =
/// integer PCM, 3 = float).
pub fn fmt_body(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(tag.to_le_bytes());
    f.extend(channels.to_le_bytes());
    f.extend(rate.to_le_bytes());
    f.extend((rate * u32::from(block_align)).to_le_bytes());
    f.extend(block_align.to_le_bytes());
    f.extend(bits.to_le_bytes());
    f
}

/// The `fmt ` chunk of plain interleaved frames of `channels` samples of
/// `bits` bits each.
pub fn fmt_chunk(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    chunk(
        b"fmt ",
        &fmt_body(tag, channels, rate, channels * bits / 8, bits),
    )
}
