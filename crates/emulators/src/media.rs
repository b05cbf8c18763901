//! The bytes of a fake video, and content types by magic bytes; used by both emulators.

/// A minimal, structurally valid MP4: `ftyp` (isom), a `free` box and an empty `mdat`.
/// No player can show it, but anything that checks the container accepts it.
pub(crate) fn tiny_mp4() -> Vec<u8> {
    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let size = u32::try_from(8 + payload.len()).unwrap_or(u32::MAX);
        let mut b = size.to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }
    let mut ftyp = b"isom".to_vec();
    ftyp.extend_from_slice(&0x200u32.to_be_bytes());
    ftyp.extend_from_slice(b"isomiso2avc1mp41");
    let mut out = boxed(b"ftyp", &ftyp);
    out.extend(boxed(b"free", &[0u8; 256]));
    out.extend(boxed(b"mdat", &[]));
    out
}

/// The content type of `bytes` by its magic numbers.
pub(crate) fn sniff_mime(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        "image/png"
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if bytes.len() >= 8 && &bytes[4..8] == b"ftyp" {
        "video/mp4"
    } else {
        "application/octet-stream"
    }
}

/// The file extension that goes with a type from [`sniff_mime`].
pub(crate) fn extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_video_is_a_small_mp4() {
        let mp4 = tiny_mp4();
        assert_eq!(&mp4[4..12], b"ftypisom");
        assert_eq!(sniff_mime(&mp4), "video/mp4");
        assert!(mp4.len() > 200 && mp4.len() < 1000);
        assert_eq!(&mp4[mp4.len() - 4..], b"mdat");
    }

    #[test]
    fn images_are_recognised_by_their_magic() {
        assert_eq!(sniff_mime(&[0xFF, 0xD8, 0xFF, 0xE0]), "image/jpeg");
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff_mime(b"hello"), "application/octet-stream");
    }
}
