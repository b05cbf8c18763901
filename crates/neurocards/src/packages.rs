//! Credit packages sold for Telegram Stars, from `packages.toml`: id, credits, price in
//! Stars, an optional bonus label. A default set is built in; `PACKAGES_FILE` replaces it.
//! The file is checked at start: a broken one stops the process with the line it breaks on.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::catalogue::line_of;
use crate::texts::Lang;

pub const BUILT_IN: &str = include_str!("../packages.default.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub id: String,
    pub credits: i64,
    /// The price in Telegram Stars (currency XTR).
    pub stars: i64,
    pub bonus: Option<Bonus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bonus {
    pub ru: String,
    pub en: String,
}

impl Package {
    pub fn bonus(&self, lang: Lang) -> Option<&str> {
        self.bonus.as_ref().map(|bonus| match lang {
            Lang::Ru => bonus.ru.as_str(),
            Lang::En => bonus.en.as_str(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    packages: Vec<Package>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read the packages file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the packages file {origin} is not valid: {message}")]
    Syntax { origin: String, message: String },
    #[error("the packages file {origin} is not valid, line {line}: {problem}")]
    Invalid {
        origin: String,
        line: usize,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    package: Vec<Spanned<RawPackage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    id: Spanned<String>,
    credits: Spanned<i64>,
    stars: Spanned<i64>,
    #[serde(default)]
    bonus: Option<Bonus>,
}

/// Telegram's bounds for one Stars invoice are wider; these keep a typo from selling a
/// million credits.
const MAX_CREDITS: i64 = 100_000;
const MAX_STARS: i64 = 10_000;

impl Packages {
    pub fn built_in() -> Result<Packages, PackageError> {
        Packages::parse(BUILT_IN, "(built in)")
    }

    /// The file at `path`, or the built-in set when none is given.
    pub fn load(path: Option<&Path>) -> Result<Packages, PackageError> {
        match path {
            None => Packages::built_in(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| PackageError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Packages::parse(&text, &path.display().to_string())
            }
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<Packages, PackageError> {
        let file: File = toml::from_str(text).map_err(|err| PackageError::Syntax {
            origin: origin.to_owned(),
            message: err.to_string().trim().to_owned(),
        })?;
        let invalid = |offset: usize, problem: String| PackageError::Invalid {
            origin: origin.to_owned(),
            line: line_of(text, offset),
            problem,
        };
        if file.package.is_empty() {
            return Err(invalid(0, "no [[package]]: at least one is needed".into()));
        }
        let mut seen = HashSet::new();
        let mut packages = Vec::with_capacity(file.package.len());
        for raw in file.package {
            let at = raw.span().start;
            let raw = raw.into_inner();
            let id = raw.id.get_ref().clone();
            // The id travels in invoice payloads and button data (64 bytes at most).
            let id_ok = (1..=16).contains(&id.len())
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !id_ok {
                return Err(invalid(
                    raw.id.span().start,
                    format!(
                        "package {id:?}: the id must be 1 to 16 characters of a-z, 0-9, _ and -"
                    ),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(invalid(
                    raw.id.span().start,
                    format!("package {id}: the id is used twice"),
                ));
            }
            let credits = *raw.credits.get_ref();
            if !(1..=MAX_CREDITS).contains(&credits) {
                return Err(invalid(
                    raw.credits.span().start,
                    format!("package {id}: credits must be 1 to {MAX_CREDITS}, not {credits}"),
                ));
            }
            let stars = *raw.stars.get_ref();
            if !(1..=MAX_STARS).contains(&stars) {
                return Err(invalid(
                    raw.stars.span().start,
                    format!("package {id}: stars must be 1 to {MAX_STARS}, not {stars}"),
                ));
            }
            if raw
                .bonus
                .as_ref()
                .is_some_and(|bonus| bonus.ru.trim().is_empty() || bonus.en.trim().is_empty())
            {
                return Err(invalid(
                    at,
                    format!("package {id}: a bonus needs both labels (ru and en)"),
                ));
            }
            packages.push(Package {
                id,
                credits,
                stars,
                bonus: raw.bonus,
            });
        }
        Ok(Packages { packages })
    }

    pub fn all(&self) -> &[Package] {
        &self.packages
    }

    pub fn get(&self, id: &str) -> Option<&Package> {
        self.packages.iter().find(|package| package.id == id)
    }
}

/// What an invoice carries back to us in its payload: the package and the buyer. The price
/// is not in it: the checkout compares the amount with the package's price *now*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePayload {
    pub package: String,
    pub user: i64,
}

impl InvoicePayload {
    /// Telegram allows 1 to 128 bytes; ids are at most 16.
    pub fn encode(&self) -> String {
        format!("buy:{}:{}", self.package, self.user)
    }

    pub fn parse(payload: &str) -> Option<InvoicePayload> {
        let mut parts = payload.split(':');
        let (Some("buy"), Some(package), Some(user), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let user = user.parse::<i64>().ok().filter(|id| *id > 0)?;
        (!package.is_empty()).then(|| InvoicePayload {
            package: package.to_owned(),
            user,
        })
    }
}

/// Why a checkout is refused; each is told to the buyer in their language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutRefusal {
    /// Not an invoice of ours, or not in Stars.
    Malformed,
    /// Someone else's invoice (forwarded, say): credits go to the one who asked for them.
    OtherUser,
    /// The package is no longer sold.
    Retired,
    /// The price changed since the invoice was sent.
    PriceChanged { now: i64 },
}

/// Whether `payer` may pay `total` Stars for the invoice with `payload`, now.
pub fn check_checkout<'a>(
    packages: &'a Packages,
    payload: &str,
    payer: i64,
    currency: &str,
    total: i64,
) -> Result<&'a Package, CheckoutRefusal> {
    let payload = InvoicePayload::parse(payload).ok_or(CheckoutRefusal::Malformed)?;
    if currency != "XTR" {
        return Err(CheckoutRefusal::Malformed);
    }
    if payload.user != payer {
        return Err(CheckoutRefusal::OtherUser);
    }
    let package = packages
        .get(&payload.package)
        .ok_or(CheckoutRefusal::Retired)?;
    if package.stars != total {
        return Err(CheckoutRefusal::PriceChanged { now: package.stars });
    }
    Ok(package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_foreign_ones_are_refused() {
        let payload = InvoicePayload {
            package: "standard".into(),
            user: 42,
        };
        assert_eq!(payload.encode(), "buy:standard:42");
        assert_eq!(InvoicePayload::parse(&payload.encode()), Some(payload));
        for bad in [
            "",
            "buy",
            "buy::42",
            "buy:a:0",
            "buy:a:-1",
            "buy:a:x",
            "buy:a:1:2",
            "sell:a:1",
        ] {
            assert_eq!(InvoicePayload::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_checkout_is_refused_for_another_user_a_retired_package_or_a_new_price() {
        let packages = Packages::built_in().expect("built-in packages");
        let ok = check_checkout(&packages, "buy:start:7", 7, "XTR", 100);
        assert_eq!(ok.map(|p| p.credits), Ok(5));
        assert_eq!(
            check_checkout(&packages, "buy:start:7", 8, "XTR", 100),
            Err(CheckoutRefusal::OtherUser)
        );
        assert_eq!(
            check_checkout(&packages, "buy:gone:7", 7, "XTR", 100),
            Err(CheckoutRefusal::Retired)
        );
        assert_eq!(
            check_checkout(&packages, "buy:start:7", 7, "XTR", 90),
            Err(CheckoutRefusal::PriceChanged { now: 100 })
        );
        assert_eq!(
            check_checkout(&packages, "buy:start:7", 7, "USD", 100),
            Err(CheckoutRefusal::Malformed)
        );
        assert_eq!(
            check_checkout(&packages, "hello", 7, "XTR", 100),
            Err(CheckoutRefusal::Malformed)
        );
    }

    #[test]
    fn the_built_in_packages_are_valid() {
        let packages = Packages::built_in().expect("built-in packages parse");
        assert!(!packages.all().is_empty());
        let start = packages.get("start").expect("a start package");
        assert_eq!((start.credits, start.stars), (5, 100));
        assert_eq!(
            packages.get("pro").and_then(|p| p.bonus(Lang::En)),
            Some("save 25%")
        );
    }

    #[test]
    fn a_broken_file_names_the_line_and_the_problem() {
        let cases = [
            ("[[package]]\nid = \"a\"\ncredits = 0\nstars = 5\n", 3, "credits must be"),
            ("[[package]]\nid = \"a\"\ncredits = 5\nstars = 20000\n", 4, "stars must be"),
            ("[[package]]\nid = \"Big One\"\ncredits = 5\nstars = 5\n", 2, "the id must be"),
            (
                "[[package]]\nid = \"a\"\ncredits = 5\nstars = 5\n[[package]]\nid = \"a\"\ncredits = 1\nstars = 1\n",
                6,
                "used twice",
            ),
        ];
        for (text, line, problem) in cases {
            let err = Packages::parse(text, "test.toml")
                .expect_err(text)
                .to_string();
            assert!(err.contains(&format!("line {line}")), "{err}");
            assert!(err.contains(problem), "{err}");
        }
        let err = Packages::parse("", "test.toml")
            .expect_err("empty")
            .to_string();
        assert!(err.contains("at least one"), "{err}");
        let err = Packages::parse(
            "[[package]]\nid = \"a\"\ncredits = 5\nstars = 5\nprice = 3\n",
            "t",
        )
        .expect_err("unknown field")
        .to_string();
        assert!(err.contains("price"), "{err}");
    }
}
