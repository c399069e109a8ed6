//! Commands quoted in advice, written so that pasting them into bash or zsh does what
//! the advice says (a bare `|` in `GOPROXY=a|direct` would start a pipeline).

/// `` `go env -w VAR=value` `` with the value single-quoted when a shell would
/// otherwise split or interpret it, in backticks so readers (and tests) can find it.
pub fn go_env_w(var: &str, value: &str) -> String {
    format!("`go env -w {var}={}`", shell_word(value))
}

/// `value` as one shell word: unchanged when it holds only characters no shell treats
/// specially, single-quoted otherwise (`'` itself written as `'\''`).
pub fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Every backticked `go env -w ...` command in a piece of advice, in order.
pub fn go_env_commands(advice: &str) -> Vec<&str> {
    advice
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|cmd| cmd.starts_with("go env -w "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_a_shell_would_split_are_quoted() {
        let table = [
            ("https://proxy.golang.org", "https://proxy.golang.org"),
            ("https://a.example|direct", "'https://a.example|direct'"),
            (
                "https://proxy.golang.org,direct",
                "'https://proxy.golang.org,direct'",
            ),
            ("*.corp.example", "'*.corp.example'"),
            ("github.com/org", "github.com/org"),
            ("it's", r"'it'\''s'"),
            ("", "''"),
        ];
        for (value, want) in table {
            assert_eq!(shell_word(value), want, "{value}");
        }
        assert_eq!(
            go_env_w("GOPROXY", "https://a|direct"),
            "`go env -w GOPROXY='https://a|direct'`"
        );
    }

    #[test]
    fn commands_are_found_between_backticks() {
        let advice =
            "check `getent hosts x`; or `go env -w GOPROXY='a|b'` and `go env -w GOPRIVATE=c`";
        assert_eq!(
            go_env_commands(advice),
            vec!["go env -w GOPROXY='a|b'", "go env -w GOPRIVATE=c"]
        );
    }
}
