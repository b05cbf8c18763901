//! What the user typed, parsed and cleaned: commands, prompts, admin arguments. Pure.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// With its parameter (an invite link's `ref_…`), empty when none.
    Start(String),
    Help,
    Balance,
    Cancel,
    Stats,
    Grant(String),
    Buy,
    Refund(String),
    PaySupport,
    Terms,
    Language(String),
    History,
    Promo(String),
    Invite,
    Broadcast(String),
    Unknown(String),
}

/// A `/command` addressed to us (`/cmd` or `/cmd@our_bot`); `None` for plain text or a
/// command addressed to another bot.
pub fn parse_command(text: &str, bot_username: &str) -> Option<Command> {
    let text = text.trim_start();
    let rest = text.strip_prefix('/')?;
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(at) => (&rest[..at], rest[at..].trim()),
        None => (rest, ""),
    };
    let name = match head.split_once('@') {
        Some((name, to)) if to.eq_ignore_ascii_case(bot_username) => name,
        Some(_) => return None,
        None => head,
    };
    Some(match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start(args.to_owned()),
        "help" => Command::Help,
        "balance" => Command::Balance,
        "cancel" => Command::Cancel,
        "stats" => Command::Stats,
        "grant" => Command::Grant(args.to_owned()),
        "buy" => Command::Buy,
        "refund" => Command::Refund(args.to_owned()),
        "paysupport" => Command::PaySupport,
        "terms" => Command::Terms,
        "language" | "lang" => Command::Language(args.to_owned()),
        "history" | "videos" => Command::History,
        "promo" => Command::Promo(args.to_owned()),
        "invite" => Command::Invite,
        "broadcast" => Command::Broadcast(args.to_owned()),
        other => Command::Unknown(other.to_owned()),
    })
}

/// `<user_id> <credits>`, credits non-zero (negative takes back).
pub fn parse_grant(args: &str) -> Option<(i64, i64)> {
    let mut words = args.split_whitespace();
    let user = words.next()?.parse::<i64>().ok().filter(|id| *id > 0)?;
    let credits = words
        .next()?
        .parse::<i64>()
        .ok()
        .filter(|credits| *credits != 0)?;
    words.next().is_none().then_some((user, credits))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptProblem {
    Empty,
    TooLong { length: usize },
}

/// Removes what has no place in a prompt (control characters, and the invisible direction
/// overrides that can disguise text) while keeping right-to-left scripts, then checks the
/// length.
pub fn clean_prompt(raw: &str, max_chars: usize) -> Result<String, PromptProblem> {
    let cleaned: String = raw
        .chars()
        .map(|c| if c == '\t' || c == '\r' { ' ' } else { c })
        .filter(|c| *c == '\n' || !c.is_control())
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'))
        .collect();
    let cleaned = cleaned.trim().to_owned();
    let length = cleaned.chars().count();
    if length == 0 {
        Err(PromptProblem::Empty)
    } else if length > max_chars {
        Err(PromptProblem::TooLong { length })
    } else {
        Ok(cleaned)
    }
}

/// A promo code as typed: trimmed and upper-cased; `None` when it cannot be a code (empty,
/// too long, or other characters than letters, digits, `_` and `-`).
pub fn normalize_promo(text: &str) -> Option<String> {
    let code = text.trim().to_uppercase();
    let valid = (1..=32).contains(&code.chars().count())
        && code
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    valid.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised_with_or_without_our_name() {
        assert_eq!(
            parse_command("/start", "nc_bot"),
            Some(Command::Start(String::new()))
        );
        assert_eq!(
            parse_command("/START@NC_bot", "nc_bot"),
            Some(Command::Start(String::new()))
        );
        assert_eq!(
            parse_command("/start ref_21i3v9", "nc_bot"),
            Some(Command::Start("ref_21i3v9".into()))
        );
        assert_eq!(
            parse_command("/grant 5 10", "nc_bot"),
            Some(Command::Grant("5 10".into()))
        );
        assert_eq!(parse_command("/help@other_bot", "nc_bot"), None);
        assert_eq!(
            parse_command("/frobnicate now", "nc_bot"),
            Some(Command::Unknown("frobnicate".into()))
        );
        assert_eq!(parse_command("hello /start", "nc_bot"), None);
    }

    #[test]
    fn grant_needs_a_user_and_a_non_zero_amount() {
        assert_eq!(parse_grant("123 10"), Some((123, 10)));
        assert_eq!(parse_grant("123 -4"), Some((123, -4)));
        for bad in [
            "", "123", "abc 10", "123 ten", "123 0", "-5 10", "1 2 3", "123 1.5",
        ] {
            assert_eq!(parse_grant(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prompts_lose_control_and_override_characters_but_keep_rtl_text() {
        assert_eq!(
            clean_prompt("  a mug\u{0007} on\ta table  ", 2000),
            Ok("a mug on a table".into())
        );
        assert_eq!(clean_prompt("\u{202E}txet", 2000), Ok("txet".into()));
        assert_eq!(
            clean_prompt("כוס קפה על שולחן", 2000),
            Ok("כוס קפה על שולחן".into())
        );
        assert_eq!(
            clean_prompt("line one\nline two", 2000),
            Ok("line one\nline two".into())
        );
    }

    #[test]
    fn empty_and_overlong_prompts_are_refused_with_the_reason() {
        assert_eq!(clean_prompt("", 2000), Err(PromptProblem::Empty));
        assert_eq!(
            clean_prompt(" \u{0000}\u{202E} ", 2000),
            Err(PromptProblem::Empty)
        );
        assert_eq!(
            clean_prompt(&"я".repeat(2000), 2000).map(|p| p.chars().count()),
            Ok(2000)
        );
        assert_eq!(
            clean_prompt(&"x".repeat(10_000), 2000),
            Err(PromptProblem::TooLong { length: 10_000 })
        );
    }

    #[test]
    fn a_promo_code_is_trimmed_and_upper_cased_and_only_of_its_alphabet() {
        assert_eq!(normalize_promo("  spring25 "), Some("SPRING25".to_owned()));
        assert_eq!(
            normalize_promo("new-year_2027"),
            Some("NEW-YEAR_2027".to_owned())
        );
        assert_eq!(normalize_promo(""), None);
        assert_eq!(normalize_promo("two words"), None);
        assert_eq!(normalize_promo("<script>"), None);
        assert_eq!(normalize_promo(&"A".repeat(33)), None);
    }
}
