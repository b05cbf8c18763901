//! Invite links: `https://t.me/<bot>?start=ref_<code>`, where the code is the inviter's id in
//! base 36, so a link needs nothing stored and a mistyped one names nobody or a stranger
//! (who gets the bonus only if a paying user really arrives by it).

use super::UserId;

const PREFIX: &str = "ref_";
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The `/start` parameter of `user`'s invite link.
pub fn invite_parameter(user: UserId) -> String {
    let mut n = user.0.unsigned_abs();
    let mut code = Vec::new();
    loop {
        code.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    code.reverse();
    format!("{PREFIX}{}", String::from_utf8_lossy(&code))
}

/// The inviter a `/start` parameter names; `None` for anything else.
pub fn inviter_of(parameter: &str) -> Option<UserId> {
    let code = parameter.trim().strip_prefix(PREFIX)?;
    if code.is_empty() || code.len() > 13 {
        return None;
    }
    let id = i64::from_str_radix(code, 36).ok().filter(|id| *id > 0)?;
    // One spelling per id: "ref_00a" is not "ref_a".
    (invite_parameter(UserId(id)) == parameter.trim()).then_some(UserId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_parameter_names_its_inviter_and_nothing_else_does() {
        for id in [1, 35, 36, 123_456_789, 7_000_000_000, i64::MAX] {
            let parameter = invite_parameter(UserId(id));
            assert!(parameter.len() <= 64, "Telegram's limit: {parameter}");
            assert_eq!(inviter_of(&parameter), Some(UserId(id)), "{parameter}");
        }
        assert_eq!(invite_parameter(UserId(123_456_789)), "ref_21i3v9");
        for other in [
            "",
            "ref_",
            "ref_0",
            "ref_00a",
            "ref_-1",
            "ref_ZZ",
            "abc",
            "ref_a b",
            "ref_zzzzzzzzzzzzzz",
        ] {
            assert_eq!(inviter_of(other), None, "{other:?}");
        }
    }
}
