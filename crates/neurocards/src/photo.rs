//! Fits a seller's product photo to the aspect of the video a model will make from it.
//!
//! Several image-to-video models take the video's shape from the input image, so a
//! horizontal photo would give a horizontal video. Before uploading, the photo is put on a
//! canvas of the template's aspect: the product whole (never cropped) and centred, over a
//! blurred, darkened, enlarged copy of itself that fills the canvas, as vertical videos made
//! from horizontal photos usually look. The result is a JPEG, the one format every model
//! takes.
//!
//! Pure: bytes in, bytes out, no I/O.

use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{
    DynamicImage, ImageBuffer, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader,
    Limits, Pixel, Rgb, RgbImage, RgbaImage,
};

/// The shape of a video, `width:height` (9:16 is vertical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aspect {
    pub width: u32,
    pub height: u32,
}

/// The shape of Reels, Shorts and TikTok videos.
pub const VERTICAL: Aspect = Aspect {
    width: 9,
    height: 16,
};

impl Aspect {
    pub const fn new(width: u32, height: u32) -> Result<Self, AspectError> {
        if width == 0 || height == 0 {
            return Err(AspectError::ZeroTerm { width, height });
        }
        Ok(Self { width, height })
    }

    /// The terms divided by their greatest common divisor: canvas sizes are multiples of
    /// these, so "18:32" gives the same canvases as "9:16".
    fn reduced(self) -> Result<(u32, u32), AspectError> {
        let Self { width, height } = Self::new(self.width, self.height)?;
        let divisor = gcd(width, height);
        Ok((width / divisor, height / divisor))
    }
}

impl fmt::Display for Aspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.width, self.height)
    }
}

impl FromStr for Aspect {
    type Err = AspectError;

    /// Accepts exactly what `catalogue::valid_aspect` accepts, so that an aspect a template
    /// passed at start always parses here.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || AspectError::Syntax(s.to_owned());
        let (width, height) = s.split_once(':').ok_or_else(syntax)?;
        let width = width.parse::<u32>().map_err(|_| syntax())?;
        let height = height.parse::<u32>().map_err(|_| syntax())?;
        Self::new(width, height)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AspectError {
    #[error("the aspect {0:?} is not of the form W:H, e.g. 9:16")]
    Syntax(String),
    #[error("the aspect {width}:{height} has a zero term; both must be positive")]
    ZeroTerm { width: u32, height: u32 },
}

/// The photo fitted to the aspect, JPEG-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct FittedPhoto {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl FittedPhoto {
    pub const EXTENSION: &'static str = "jpg";
    pub const MIME_TYPE: &'static str = "image/jpeg";
}

// Written by hand so that logging a photo does not dump a megabyte of numbers.
impl fmt::Debug for FittedPhoto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FittedPhoto")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("the file is not an image; send a JPEG, PNG or WebP photo")]
    NotAnImage,
    #[error("{format} images are not supported; send a JPEG, PNG or WebP photo")]
    UnsupportedFormat { format: String },
    #[error("the image cannot be decoded, it may be damaged or truncated ({reason})")]
    Corrupt { reason: String },
    #[error(
        "the image is too large: at most {max_side}x{max_side} px and {max_mib} MiB once decoded"
    )]
    TooLarge { max_side: u32, max_mib: u64 },
    #[error("the image is too small ({width}x{height} px); each side must be at least {min} px")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error(transparent)]
    Aspect(#[from] AspectError),
    #[error("no canvas of aspect {aspect} has a long side of at most {max_long_side} px")]
    UnrenderableAspect { aspect: Aspect, max_long_side: u32 },
    #[error(
        "the photo cannot be encoded within {max_bytes} bytes (smallest attempt: {smallest} bytes)"
    )]
    DoesNotFit { max_bytes: usize, smallest: usize },
    #[error("JPEG encoding failed: {0}")]
    Encode(#[source] ImageError),
}

/// Models accept up to 1080p-class inputs; a larger canvas only costs upload time.
const MAX_LONG_SIDE: u32 = 1920;
/// Models refuse tiny inputs, so small photos are upscaled to at least 720p.
const MIN_SHORT_SIDE: u32 = 720;
/// Below this, upscaling to `MIN_SHORT_SIDE` gives a smear rather than a product.
const MIN_SOURCE_SIDE: u32 = 256;
/// Decompression-bomb guard: a few bytes of PNG can claim a gigapixel.
const MAX_SOURCE_SIDE: u32 = 12_000;
const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

/// Tried in order; below 60 the JPEG blocks show on a product's edges.
const QUALITIES: [u8; 7] = [90, 85, 80, 75, 70, 65, 60];
/// When even the lowest quality is too big, each attempt shrinks the canvas to 85%.
const SHRINK_NUMERATOR: u32 = 17;
const SHRINK_DENOMINATOR: u32 = 20;

/// The background is blurred at 1/8 of the canvas and scaled up: a large-sigma blur at full
/// size takes seconds, and at 1/8 the upscale's own softness is invisible under the blur.
const BACKDROP_REDUCTION: u32 = 8;
/// Blur sigma as a fraction of the reduced backdrop's short side: about 55 px on a 1080 px
/// wide canvas, enough that no detail competes with the product.
const BACKDROP_BLUR: f32 = 0.05;
/// Darkened so that the sharp product stands out from its own copy.
const BACKDROP_BRIGHTNESS: f32 = 0.7;

/// Fits the photo `input` (JPEG, PNG or WebP) to `aspect` and encodes it as a JPEG of at most
/// `max_bytes` bytes. See the module documentation for the look.
pub fn fit_to_aspect(
    input: &[u8],
    aspect: Aspect,
    max_bytes: usize,
) -> Result<FittedPhoto, PhotoError> {
    let unit = aspect.reduced()?;
    let decoded = decode(input)?;
    let source = Source::new(decoded.image);
    let (width, height) = source.dimensions();
    if width.min(height) < MIN_SOURCE_SIDE {
        return Err(PhotoError::TooSmall {
            width,
            height,
            min: MIN_SOURCE_SIDE,
        });
    }
    let scales = canvas_scales(unit, (width, height)).ok_or(PhotoError::UnrenderableAspect {
        aspect,
        max_long_side: MAX_LONG_SIDE,
    })?;
    let canvas = source.compose(unit.0 * scales.preferred, unit.1 * scales.preferred);
    encode_within(
        canvas,
        unit,
        scales,
        max_bytes,
        decoded.icc_profile.as_deref(),
    )
}

struct Decoded {
    image: DynamicImage,
    icc_profile: Option<Vec<u8>>,
}

fn decode(input: &[u8]) -> Result<Decoded, PhotoError> {
    let format = image::guess_format(input).map_err(|_| PhotoError::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(PhotoError::UnsupportedFormat {
            format: format_name(format),
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(input), format);
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // `ImageReader::into_decoder` checks the dimensions but, unlike `decode`, does not count
    // the output buffer against the memory cap.
    let mut limits = decode_limits();
    limits
        .reserve(decoder.total_bytes())
        .map_err(decode_error)?;
    decoder.set_limits(limits).map_err(decode_error)?;
    // Metadata is a nicety: a photo whose pixels decode is not refused over a broken EXIF
    // block or colour profile.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // A CMYK or grey JPEG is decoded to RGB, so its own profile would now be wrong.
    let icc_profile = decoder
        .icc_profile()
        .ok()
        .flatten()
        .filter(|profile| profile.get(16..20) == Some(b"RGB ".as_slice()));
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    // Phones store portraits as landscape pixels plus an EXIF rotation.
    image.apply_orientation(orientation);
    Ok(Decoded { image, icc_profile })
}

fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

fn decode_error(error: ImageError) -> PhotoError {
    match error {
        ImageError::Limits(_) => PhotoError::TooLarge {
            max_side: MAX_SOURCE_SIDE,
            max_mib: MAX_DECODED_BYTES / (1024 * 1024),
        },
        other => PhotoError::Corrupt {
            reason: other.to_string(),
        },
    }
}

fn format_name(format: ImageFormat) -> String {
    match format.extensions_str().first() {
        Some(extension) => extension.to_ascii_uppercase(),
        None => format!("{format:?}"),
    }
}

/// Canvas sizes are `unit * scale` with an even `scale`: the aspect is then exact in integers
/// and both sides are even, which video encoders downstream require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scales {
    /// The smallest canvas that holds the source at full resolution, within the bounds.
    preferred: u32,
    /// The smallest canvas allowed when shrinking to meet the byte budget.
    smallest: u32,
}

/// `None` when no even scale keeps the long side within `MAX_LONG_SIDE` (e.g. 1:1000).
fn canvas_scales(unit: (u32, u32), source: (u32, u32)) -> Option<Scales> {
    let (long, short) = (unit.0.max(unit.1), unit.0.min(unit.1));
    let largest = even_floor(MAX_LONG_SIDE / long);
    if largest == 0 {
        return None;
    }
    // For extreme aspects (1:3) the two bounds conflict; the cap on the long side wins,
    // since models reject oversized inputs outright.
    let smallest = even_ceil(MIN_SHORT_SIDE.div_ceil(short)).min(largest);
    let covering = even_ceil(source.0.div_ceil(unit.0).max(source.1.div_ceil(unit.1)));
    Some(Scales {
        preferred: covering.clamp(smallest, largest),
        smallest,
    })
}

fn even_floor(value: u32) -> u32 {
    value & !1
}

fn even_ceil(value: u32) -> u32 {
    value.saturating_add(1) & !1
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `numerator / denominator` rounded to nearest, kept within `1..=max`.
fn scaled(value: u32, numerator: u32, denominator: u32, max: u32) -> u32 {
    let exact = u64::from(value) * u64::from(numerator);
    let rounded = (exact + u64::from(denominator) / 2) / u64::from(denominator);
    u32::try_from(rounded).unwrap_or(max).clamp(1, max)
}

/// Where the whole source lands on a `width`x`height` canvas: `(x, y, w, h)`.
fn contain(source: (u32, u32), width: u32, height: u32) -> (u32, u32, u32, u32) {
    let (sw, sh) = source;
    let (w, h) = if u64::from(sw) * u64::from(height) >= u64::from(sh) * u64::from(width) {
        (width, scaled(sh, width, sw, height))
    } else {
        (scaled(sw, height, sh, width), height)
    };
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// The centred region of the source with the canvas' aspect: `(x, y, w, h)`.
fn cover_crop(source: (u32, u32), width: u32, height: u32) -> (u32, u32, u32, u32) {
    let (sw, sh) = source;
    let (w, h) = if u64::from(sw) * u64::from(height) > u64::from(sh) * u64::from(width) {
        (scaled(sh, width, height, sw), sh)
    } else {
        (sw, scaled(sw, height, width, sh))
    };
    ((sw - w) / 2, (sh - h) / 2, w, h)
}

enum Source {
    Opaque(RgbImage),
    /// Premultiplied alpha: resizing straight alpha bleeds the colour of invisible pixels
    /// (usually black) into the product's edges.
    Translucent(RgbaImage),
}

impl Source {
    fn new(image: DynamicImage) -> Self {
        if image.color().has_alpha() {
            let mut rgba = image.into_rgba8();
            for pixel in rgba.pixels_mut() {
                let alpha = u32::from(pixel[3]);
                for channel in &mut pixel.0[..3] {
                    *channel = mul_div_255(u32::from(*channel), alpha);
                }
            }
            Self::Translucent(rgba)
        } else {
            Self::Opaque(image.into_rgb8())
        }
    }

    fn dimensions(&self) -> (u32, u32) {
        match self {
            Self::Opaque(image) => image.dimensions(),
            Self::Translucent(image) => image.dimensions(),
        }
    }

    fn compose(&self, width: u32, height: u32) -> RgbImage {
        let (x, y, w, h) = contain(self.dimensions(), width, height);
        match self {
            Self::Opaque(image) => {
                let mut canvas = backdrop(image, width, height, |pixel| *pixel);
                let product = scale_product(image, w, h);
                imageops::replace(&mut canvas, &product, i64::from(x), i64::from(y));
                canvas
            }
            Self::Translucent(image) => {
                // Where the photo is transparent the backdrop shows the photo over white,
                // so a cut-out product gets a light, product-tinted background.
                let mut canvas = backdrop(image, width, height, |pixel| {
                    let uncovered = 255 - pixel[3];
                    Rgb([
                        pixel[0].saturating_add(uncovered),
                        pixel[1].saturating_add(uncovered),
                        pixel[2].saturating_add(uncovered),
                    ])
                });
                let product = scale_product(image, w, h);
                for (px, py, top) in product.enumerate_pixels() {
                    let bottom = canvas.get_pixel_mut(x + px, y + py);
                    let uncovered = 255 - u32::from(top[3]);
                    for (channel, &over) in bottom.0.iter_mut().zip(&top.0[..3]) {
                        *channel = over.saturating_add(mul_div_255(u32::from(*channel), uncovered));
                    }
                }
                canvas
            }
        }
    }
}

/// Shrinking at least twofold, area averaging is as good as a filtered resize and several
/// times faster: on a 12-megapixel photo, 70 ms instead of 200 ms.
fn scale_product<P>(
    source: &ImageBuffer<P, Vec<u8>>,
    width: u32,
    height: u32,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (source_width, source_height) = source.dimensions();
    if source_width >= 2 * width && source_height >= 2 * height {
        imageops::thumbnail(source, width, height)
    } else {
        imageops::resize(source, width, height, FilterType::CatmullRom)
    }
}

fn mul_div_255(value: u32, factor: u32) -> u8 {
    u8::try_from((value * factor + 127) / 255).unwrap_or(u8::MAX)
}

/// The source cropped to cover the canvas, blurred and darkened.
fn backdrop<P>(
    source: &ImageBuffer<P, Vec<u8>>,
    width: u32,
    height: u32,
    flatten: impl Fn(&P) -> Rgb<u8>,
) -> RgbImage
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (x, y, w, h) = cover_crop(source.dimensions(), width, height);
    let small_width = width.div_ceil(BACKDROP_REDUCTION);
    let small_height = height.div_ceil(BACKDROP_REDUCTION);
    let region = imageops::crop_imm(source, x, y, w, h);
    let reduced = imageops::thumbnail(&*region, small_width, small_height);
    let darkened = RgbImage::from_fn(small_width, small_height, |px, py| {
        let Rgb(channels) = flatten(reduced.get_pixel(px, py));
        // At most 255 * 0.7, so the cast cannot truncate.
        Rgb(channels.map(|c| (f32::from(c) * BACKDROP_BRIGHTNESS).round() as u8))
    });
    let sigma = BACKDROP_BLUR * small_width.min(small_height) as f32;
    let blurred = imageops::blur(&darkened, sigma.max(1.0));
    imageops::resize(&blurred, width, height, FilterType::Triangle)
}

/// Lowers the quality, then the size, until the JPEG fits in `max_bytes`.
fn encode_within(
    composed: RgbImage,
    unit: (u32, u32),
    scales: Scales,
    max_bytes: usize,
    icc_profile: Option<&[u8]>,
) -> Result<FittedPhoto, PhotoError> {
    let mut scale = scales.preferred;
    let mut canvas = composed.clone();
    let mut smallest = usize::MAX;
    let [best, middle @ .., worst] = QUALITIES;
    loop {
        let encoded = encode_jpeg(&canvas, best, icc_profile)?;
        smallest = smallest.min(encoded.len());
        if encoded.len() <= max_bytes {
            return Ok(fitted(encoded, &canvas));
        }
        // Trying the lowest quality first skips the intermediate ones when no quality can
        // fit at this size.
        let lowest = encode_jpeg(&canvas, worst, icc_profile)?;
        smallest = smallest.min(lowest.len());
        if lowest.len() <= max_bytes {
            for quality in middle {
                let encoded = encode_jpeg(&canvas, quality, icc_profile)?;
                if encoded.len() <= max_bytes {
                    return Ok(fitted(encoded, &canvas));
                }
            }
            return Ok(fitted(lowest, &canvas));
        }
        if scale <= scales.smallest {
            return Err(PhotoError::DoesNotFit {
                max_bytes,
                smallest,
            });
        }
        scale = even_floor(scale * SHRINK_NUMERATOR / SHRINK_DENOMINATOR).max(scales.smallest);
        // From the full-size canvas each time, so that successive shrinks do not compound
        // their softening.
        canvas = imageops::resize(
            &composed,
            unit.0 * scale,
            unit.1 * scale,
            FilterType::CatmullRom,
        );
    }
}

fn encode_jpeg(
    canvas: &RgbImage,
    quality: u8,
    icc_profile: Option<&[u8]>,
) -> Result<Vec<u8>, PhotoError> {
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, quality);
    if let Some(profile) = icc_profile {
        // Keeps wide-gamut (Display P3) phone photos' colours; should the profile be
        // refused, the photo is still worth sending with sRGB colours.
        let _ = encoder.set_icc_profile(profile.to_vec());
    }
    encoder.encode_image(canvas).map_err(PhotoError::Encode)?;
    Ok(bytes)
}

fn fitted(bytes: Vec<u8>, canvas: &RgbImage) -> FittedPhoto {
    FittedPhoto {
        bytes,
        width: canvas.width(),
        height: canvas.height(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, Rgba};

    const NO_LIMIT: usize = usize::MAX;

    fn png(image: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(image)
            .unwrap();
        out
    }

    fn output(photo: &FittedPhoto) -> RgbImage {
        assert_eq!(
            image::guess_format(&photo.bytes).unwrap(),
            ImageFormat::Jpeg
        );
        let image = image::load_from_memory_with_format(&photo.bytes, ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert_eq!(image.dimensions(), (photo.width, photo.height));
        image
    }

    fn assert_close(actual: Rgb<u8>, expected: Rgb<u8>, tolerance: u8, what: &str) {
        let close = actual
            .0
            .iter()
            .zip(expected.0)
            .all(|(&a, e)| a.abs_diff(e) <= tolerance);
        assert!(
            close,
            "{what}: got {actual:?}, expected {expected:?} ±{tolerance}"
        );
    }

    fn assert_vertical_bounds(photo: &FittedPhoto) {
        let (w, h) = (photo.width, photo.height);
        assert_eq!(u64::from(w) * 16, u64::from(h) * 9, "{w}x{h} is not 9:16");
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h} has an odd side");
        assert!(
            (720..=1920).contains(&w) && (720..=1920).contains(&h),
            "{w}x{h}"
        );
    }

    /// A smooth, colourful pattern, so that JPEG sizes depend on quality as for a photo.
    fn pattern(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([
                (x * 255 / width) as u8,
                (y * 255 / height) as u8,
                ((x + y) % 64 * 4) as u8,
            ])
        })
    }

    /// Pseudo-random noise: the worst case for JPEG, to make byte budgets bite.
    fn noise(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_f491_u32;
        RgbImage::from_fn(width, height, |_, _| {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            };
            Rgb([next(), next(), next()])
        })
    }

    #[test]
    fn every_source_shape_gets_the_exact_vertical_aspect_within_bounds() {
        for (width, height) in [(960, 540), (600, 600), (500, 1000), (900, 1600), (400, 300)] {
            let photo = fit_to_aspect(&jpeg(&pattern(width, height)), VERTICAL, NO_LIMIT)
                .unwrap_or_else(|e| panic!("{width}x{height}: {e}"));
            assert_vertical_bounds(&photo);
            output(&photo);
        }
    }

    #[test]
    fn the_canvas_keeps_the_source_resolution_within_the_bounds() {
        let size = |width, height| {
            let photo = fit_to_aspect(&jpeg(&pattern(width, height)), VERTICAL, NO_LIMIT).unwrap();
            (photo.width, photo.height)
        };
        // A 9:16 source is kept as it is.
        assert_eq!(size(900, 1600), (900, 1600));
        // Just large enough to hold the 1000 px wide source unscaled (112 * 9 = 1008).
        assert_eq!(size(1000, 1000), (1008, 1792));
        // Small photos are upscaled to the minimum, large ones capped.
        assert_eq!(size(400, 300), (720, 1280));
        assert_eq!(size(2400, 1350), (1080, 1920));
    }

    #[test]
    fn a_photo_that_has_the_aspect_fills_the_canvas() {
        let mut source = RgbImage::from_pixel(900, 1600, Rgb([40, 160, 60]));
        for (x, y) in [(0, 0), (860, 0), (0, 1560), (860, 1560)] {
            for dy in 0..40 {
                for dx in 0..40 {
                    source.put_pixel(x + dx, y + dy, Rgb([230, 30, 200]));
                }
            }
        }
        let out = output(&fit_to_aspect(&png(&source.into()), VERTICAL, NO_LIMIT).unwrap());
        for (x, y) in [(5, 5), (894, 5), (5, 1594), (894, 1594)] {
            assert_close(*out.get_pixel(x, y), Rgb([230, 30, 200]), 24, "corner");
        }
    }

    #[test]
    fn the_centre_of_the_output_is_the_centre_of_the_photo() {
        let mut source = pattern(960, 540);
        for y in 220..320 {
            for x in 430..530 {
                source.put_pixel(x, y, Rgb([20, 200, 230]));
            }
        }
        let out = output(&fit_to_aspect(&jpeg(&source), VERTICAL, NO_LIMIT).unwrap());
        let centre = *out.get_pixel(out.width() / 2, out.height() / 2);
        assert_close(centre, Rgb([20, 200, 230]), 16, "centre");
    }

    #[test]
    fn the_whole_product_is_visible_uncropped() {
        let (width, height) = (960, 540);
        let corners = [
            Rgb([230, 20, 20]),
            Rgb([20, 220, 20]),
            Rgb([20, 20, 230]),
            Rgb([240, 230, 20]),
        ];
        let block = (width / 5, height / 5);
        let source = RgbImage::from_fn(width, height, |x, y| {
            let left = x < block.0;
            let right = x >= width - block.0;
            let top = y < block.1;
            let bottom = y >= height - block.1;
            match (left, right, top, bottom) {
                (true, _, true, _) => corners[0],
                (_, true, true, _) => corners[1],
                (true, _, _, true) => corners[2],
                (_, true, _, true) => corners[3],
                _ => Rgb([128, 128, 128]),
            }
        });
        let out = output(&fit_to_aspect(&jpeg(&source), VERTICAL, NO_LIMIT).unwrap());
        // Where the contained photo lands, computed independently of the module.
        let (cw, ch) = (f64::from(out.width()), f64::from(out.height()));
        let scale = (cw / f64::from(width)).min(ch / f64::from(height));
        let (pw, ph) = (f64::from(width) * scale, f64::from(height) * scale);
        let (left, top) = ((cw - pw) / 2.0, (ch - ph) / 2.0);
        let inset = 6.0;
        let spots = [
            (left + inset, top + inset),
            (left + pw - 1.0 - inset, top + inset),
            (left + inset, top + ph - 1.0 - inset),
            (left + pw - 1.0 - inset, top + ph - 1.0 - inset),
        ];
        for ((x, y), colour) in spots.into_iter().zip(corners) {
            let actual = *out.get_pixel(x.round() as u32, y.round() as u32);
            assert_close(actual, colour, 32, &format!("corner at ({x:.0}, {y:.0})"));
        }
    }

    #[test]
    fn the_background_is_the_blurred_darkened_photo() {
        let source = RgbImage::from_fn(960, 540, |x, _| {
            if x % 40 < 20 {
                Rgb([250, 180, 60])
            } else {
                Rgb([210, 140, 20])
            }
        });
        let out = output(&fit_to_aspect(&jpeg(&source), VERTICAL, NO_LIMIT).unwrap());
        let (_, top, _, _) = contain((960, 540), out.width(), out.height());
        assert!(top > 100, "the landscape photo should leave room above it");
        let above = *out.get_pixel(out.width() / 2, top / 2);
        assert_ne!(above, Rgb([0, 0, 0]));
        // The stripes average to (230, 160, 40); darkened by 0.7 that is (161, 112, 28).
        assert_close(above, Rgb([161, 112, 28]), 20, "background");
        // Blurred: no stripe survives across a row of the background.
        let row: Vec<u8> = (0..out.width())
            .map(|x| out.get_pixel(x, top / 2)[0])
            .collect();
        let spread = row.iter().max().unwrap() - row.iter().min().unwrap();
        assert!(spread < 24, "background row spread {spread}");
    }

    #[test]
    fn transparency_shows_the_background_not_black() {
        // Transparent pixels are black underneath: dropping alpha would show them black.
        let source = RgbaImage::from_fn(600, 400, |x, _| {
            if x < 300 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([30, 60, 220, 255])
            }
        });
        let photo = fit_to_aspect(&png(&source.into()), VERTICAL, NO_LIMIT).unwrap();
        assert_vertical_bounds(&photo);
        let out = output(&photo);
        let (x, y, w, h) = contain((600, 400), out.width(), out.height());
        let transparent = *out.get_pixel(x + w / 4, y + h / 2);
        let opaque = *out.get_pixel(x + w * 3 / 4, y + h / 2);
        assert_close(opaque, Rgb([30, 60, 220]), 16, "opaque half");
        let luma = transparent.0.iter().map(|&c| u32::from(c)).sum::<u32>() / 3;
        assert!(luma > 80, "the transparent half is dark: {transparent:?}");
    }

    #[test]
    fn the_exif_orientation_is_applied() {
        // Stored landscape, top half red; EXIF says "rotate 90° clockwise", so the photo is
        // a portrait whose right half is red.
        let stored = RgbImage::from_fn(600, 400, |_, y| {
            if y < 200 {
                Rgb([230, 20, 20])
            } else {
                Rgb([20, 20, 230])
            }
        });
        let exif: &[u8] = &[
            b'M', b'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD at 8
            0, 1, // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation, SHORT, 1, value 6
            0, 0, 0, 0, // no next IFD
        ];
        let mut bytes = Vec::new();
        let mut encoder = PngEncoder::new(&mut bytes);
        encoder.set_exif_metadata(exif.to_vec()).unwrap();
        encoder
            .write_image(stored.as_raw(), 600, 400, ExtendedColorType::Rgb8)
            .unwrap();
        let out = output(&fit_to_aspect(&bytes, VERTICAL, NO_LIMIT).unwrap());
        let (x, y, w, h) = contain((400, 600), out.width(), out.height());
        assert!(h > w, "the product should be upright");
        assert_close(
            *out.get_pixel(x + w * 3 / 4, y + 10),
            Rgb([230, 20, 20]),
            24,
            "right",
        );
        assert_close(
            *out.get_pixel(x + w / 4, y + 10),
            Rgb([20, 20, 230]),
            24,
            "left",
        );
    }

    #[test]
    fn an_rgb_colour_profile_is_kept_and_another_dropped() {
        let profile = |space: &[u8; 4]| {
            let mut profile = vec![0u8; 128];
            profile[16..20].copy_from_slice(space);
            profile
        };
        let carried = |profile: Vec<u8>| {
            let mut bytes = Vec::new();
            let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 90);
            encoder.set_icc_profile(profile).unwrap();
            encoder.encode_image(&pattern(400, 300)).unwrap();
            let photo = fit_to_aspect(&bytes, VERTICAL, NO_LIMIT).unwrap();
            let mut reader = ImageReader::new(Cursor::new(photo.bytes));
            reader.set_format(ImageFormat::Jpeg);
            reader.into_decoder().unwrap().icc_profile().unwrap()
        };
        assert_eq!(carried(profile(b"RGB ")), Some(profile(b"RGB ")));
        assert_eq!(carried(profile(b"CMYK")), None);
    }

    #[test]
    fn webp_is_accepted() {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::from(pattern(640, 480))
            .write_to(&mut out, ImageFormat::WebP)
            .unwrap();
        let photo = fit_to_aspect(out.get_ref(), VERTICAL, NO_LIMIT).unwrap();
        assert_vertical_bounds(&photo);
    }

    #[test]
    fn other_aspects_are_exact_too() {
        let horizontal = Aspect::new(16, 9).unwrap();
        let photo = fit_to_aspect(&jpeg(&pattern(600, 900)), horizontal, NO_LIMIT).unwrap();
        assert_eq!((photo.width, photo.height), (1600, 900));
        let square = Aspect::new(1, 1).unwrap();
        let photo = fit_to_aspect(&jpeg(&pattern(960, 540)), square, NO_LIMIT).unwrap();
        assert_eq!((photo.width, photo.height), (960, 960));
        output(&photo);
    }

    #[test]
    fn canvas_scales_honour_the_bounds() {
        let scales = |unit, source| canvas_scales(unit, source).unwrap();
        assert_eq!(
            scales((9, 16), (4000, 3000)),
            Scales {
                preferred: 120,
                smallest: 80
            }
        );
        assert_eq!(scales((9, 16), (100, 100)).preferred, 80);
        // 1:3 cannot have both 720 px and at most 1920 px: the cap wins.
        assert_eq!(
            scales((1, 3), (1000, 1000)),
            Scales {
                preferred: 640,
                smallest: 640
            }
        );
        assert_eq!(canvas_scales((1, 1921), (1000, 1000)), None);
        assert_eq!(canvas_scales((1, 961), (1000, 1000)), None);
    }

    #[test]
    fn errors_are_photo_errors() {
        let garbage = b"this is certainly not a photo of a product".as_slice();
        assert!(matches!(
            fit_to_aspect(garbage, VERTICAL, NO_LIMIT),
            Err(PhotoError::NotAnImage)
        ));
        assert!(matches!(
            fit_to_aspect(&[], VERTICAL, NO_LIMIT),
            Err(PhotoError::NotAnImage)
        ));
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".as_slice();
        let error = fit_to_aspect(gif, VERTICAL, NO_LIMIT).unwrap_err();
        assert!(matches!(error, PhotoError::UnsupportedFormat { .. }));
        assert!(error.to_string().contains("GIF"), "{error}");

        let whole = jpeg(&pattern(640, 480));
        // A JPEG cut inside its scan data decodes (grey where data is missing), as in most
        // viewers; cut inside its headers it cannot.
        assert!(matches!(
            fit_to_aspect(&whole[..200], VERTICAL, NO_LIMIT),
            Err(PhotoError::Corrupt { .. })
        ));
        let whole_png = png(&pattern(640, 480).into());
        assert!(matches!(
            fit_to_aspect(&whole_png[..whole_png.len() / 2], VERTICAL, NO_LIMIT),
            Err(PhotoError::Corrupt { .. })
        ));

        assert!(matches!(
            fit_to_aspect(&jpeg(&pattern(300, 200)), VERTICAL, NO_LIMIT),
            Err(PhotoError::TooSmall {
                width: 300,
                height: 200,
                ..
            })
        ));

        let zero = Aspect {
            width: 0,
            height: 16,
        };
        assert!(matches!(
            fit_to_aspect(&whole, zero, NO_LIMIT),
            Err(PhotoError::Aspect(AspectError::ZeroTerm { .. }))
        ));
    }

    #[test]
    fn decompression_bombs_are_refused_before_decoding() {
        // Headers alone: a decoder that allocated first would take gigabytes here.
        for (width, height, colour_type) in
            [(20_000, 20_000, 2), (100, 13_000, 2), (11_000, 11_000, 6)]
        {
            let error = fit_to_aspect(
                &png_header_only(width, height, colour_type),
                VERTICAL,
                NO_LIMIT,
            )
            .unwrap_err();
            assert!(
                matches!(error, PhotoError::TooLarge { .. }),
                "{width}x{height}: {error}"
            );
        }
    }

    /// A PNG claiming `width`x`height` pixels (colour type 2 is RGB, 6 RGBA), whose pixel
    /// data stops after the zlib header.
    fn png_header_only(width: u32, height: u32, colour_type: u8) -> Vec<u8> {
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, colour_type, 0, 0, 0]);
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", header.as_slice()), (b"IDAT", &[0x78, 0x9c])] {
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(data);
            bytes.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_budget_too_small_for_anything_is_an_error() {
        let error = fit_to_aspect(&jpeg(&pattern(400, 300)), VERTICAL, 1_000).unwrap_err();
        assert!(
            matches!(error, PhotoError::DoesNotFit { max_bytes: 1_000, smallest } if smallest > 1_000),
            "{error}"
        );
    }

    #[test]
    fn a_tight_budget_lowers_the_quality_and_still_fits() {
        let source = jpeg(&noise(810, 1440));
        let generous = fit_to_aspect(&source, VERTICAL, NO_LIMIT).unwrap();
        let budget = generous.bytes.len() * 3 / 4;
        let tight = fit_to_aspect(&source, VERTICAL, budget).unwrap();
        assert!(
            tight.bytes.len() <= budget,
            "{} > {budget}",
            tight.bytes.len()
        );
        assert_eq!(
            (tight.width, tight.height),
            (generous.width, generous.height)
        );
        output(&tight);
    }

    #[test]
    fn a_budget_beyond_any_quality_shrinks_the_canvas() {
        let source = jpeg(&noise(810, 1440));
        // A 9:16 source is the canvas itself, so this is what the lowest quality gives.
        let canvas = image::load_from_memory(&source).unwrap().to_rgb8();
        let budget = encode_jpeg(&canvas, 60, None).unwrap().len() * 9 / 10;
        let small = fit_to_aspect(&source, VERTICAL, budget).unwrap();
        assert!(
            small.bytes.len() <= budget,
            "{} > {budget}",
            small.bytes.len()
        );
        assert!(small.width < 810, "{small:?}");
        assert_vertical_bounds(&small);
        output(&small);
    }

    #[test]
    fn aspects_parse_and_display() {
        assert_eq!("9:16".parse::<Aspect>(), Ok(VERTICAL));
        assert_eq!(VERTICAL.to_string(), "9:16");
        for text in ["16:9", "1:1", "4:5", "21:9"] {
            assert_eq!(text.parse::<Aspect>().unwrap().to_string(), text);
        }
        assert_eq!(
            "0:16".parse::<Aspect>(),
            Err(AspectError::ZeroTerm {
                width: 0,
                height: 16
            })
        );
        for text in ["abc", "9x16", "9:", ":16", "9:16:1", "-9:16", "9.5:16", ""] {
            assert_eq!(
                text.parse::<Aspect>(),
                Err(AspectError::Syntax(text.to_owned())),
                "{text:?}"
            );
        }
        assert!(Aspect::new(9, 0).is_err());
        assert_eq!(Aspect::new(18, 32).unwrap().reduced(), Ok((9, 16)));
    }

    /// Run with `cargo test --release -p neurocards --lib photo -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn time_a_12_megapixel_jpeg() {
        let source = jpeg(&pattern(4000, 3000));
        let start = std::time::Instant::now();
        let photo = fit_to_aspect(&source, VERTICAL, 10 * 1024 * 1024).unwrap();
        let elapsed = start.elapsed();
        println!(
            "4000x3000 JPEG ({} KiB) -> {}x{} JPEG ({} KiB) in {elapsed:?}",
            source.len() / 1024,
            photo.width,
            photo.height,
            photo.bytes.len() / 1024
        );
    }
}
