//! A drawn product photo (a mug on a table) for the demo, the benchmarks and the tests: they
//! need a real image the worker can fit and upload, and no file to ship.

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

/// The colour of the mug's body, which stays at the centre of any fitted copy.
pub const MUG: Rgb<u8> = Rgb([196, 64, 48]);

/// A `width`×`height` JPEG: a warm backdrop, a table edge, and a red mug in the middle.
pub fn product_jpeg(width: u32, height: u32) -> Vec<u8> {
    let (width, height) = (width.max(16), height.max(16));
    let image = RgbImage::from_fn(width, height, |x, y| {
        let (cx, cy) = (width / 2, height / 2);
        let (half_w, half_h) = (width / 6, height / 4);
        let in_mug = x + half_w >= cx && x <= cx + half_w && y + half_h >= cy && y <= cy + half_h;
        let handle_x = cx + half_w + width / 30;
        let in_handle =
            x > cx + half_w && x <= handle_x && y + half_h / 2 >= cy && y <= cy + half_h / 2;
        if in_mug || in_handle {
            MUG
        } else if y > height * 3 / 4 {
            Rgb([120, 84, 60])
        } else {
            let shade = u8::try_from(200 + (55 * y / height)).unwrap_or(255);
            Rgb([shade, shade.saturating_sub(20), shade.saturating_sub(50)])
        }
    });
    let mut bytes = Vec::new();
    match JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&image) {
        Ok(()) => bytes,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_a_jpeg_of_the_asked_size_with_the_mug_in_the_middle() {
        let bytes = product_jpeg(1200, 800);
        let image = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
        assert_eq!(image.dimensions(), (1200, 800));
        let centre = image.get_pixel(600, 400);
        for (got, want) in centre.0.iter().zip(MUG.0) {
            assert!(got.abs_diff(want) < 12, "{centre:?}");
        }
    }
}
