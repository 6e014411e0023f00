//! Just enough of DynamoDB's expression language to tell atomic updates from absolute ones and
//! to see which attributes a condition re-checks.

/// The right-hand side of one `SET` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetValue {
    /// `a = :v`: an absolute value computed by the caller.
    Placeholder(String),
    /// `a = a + :d` (or `- :d`): atomic arithmetic on the stored value.
    SelfArith(Vec<String>),
    /// `a = if_not_exists(a, :z) + :d` and the like.
    IfNotExists(Vec<String>),
    /// `a = list_append(a, :l)`.
    ListAppend(Vec<String>),
    /// Anything else; the placeholders it uses.
    Other(Vec<String>),
}

impl SetValue {
    pub fn placeholders(&self) -> &[String] {
        match self {
            SetValue::Placeholder(p) => std::slice::from_ref(p),
            SetValue::SelfArith(p)
            | SetValue::IfNotExists(p)
            | SetValue::ListAppend(p)
            | SetValue::Other(p) => p,
        }
    }

    /// Whether the stored value takes part, so a concurrent change is not lost.
    pub fn is_atomic(&self) -> bool {
        matches!(
            self,
            SetValue::SelfArith(_) | SetValue::IfNotExists(_) | SetValue::ListAppend(_)
        )
    }
}

/// One clause action of an update expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Set {
        path: String,
        value: SetValue,
        /// The right-hand side as written.
        rhs: String,
    },
    /// `ADD a :d`: atomic.
    Add {
        path: String,
        placeholder: String,
    },
    Remove {
        path: String,
    },
    Delete {
        path: String,
        placeholder: String,
    },
}

impl Action {
    pub fn path(&self) -> &str {
        match self {
            Action::Set { path, .. }
            | Action::Add { path, .. }
            | Action::Remove { path }
            | Action::Delete { path, .. } => path,
        }
    }
}

fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = vec![];
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(s[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

fn placeholders(s: &str) -> Vec<String> {
    tokens(s)
        .into_iter()
        .filter(|t| t.starts_with(':'))
        .map(String::from)
        .collect()
}

/// Names, paths and placeholders in an expression, in order.
pub fn tokens(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':' {
            let start = i;
            while i < bytes.len() {
                let c = bytes[i] as char;
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | ':' | '.' | '-') {
                    // `-` only inside names such as `#user-id`, never as an operator.
                    let name_dash = bytes.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric())
                        && !s[start..i].starts_with(':');
                    if c == '-' && !name_dash {
                        break;
                    }
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(&s[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

/// Parse an update expression into its actions; unknown shapes become `Other`.
pub fn parse_update(s: &str) -> Vec<Action> {
    let mut actions = vec![];
    // Split on the clause keywords at the top level.
    let mut clauses: Vec<(String, String)> = vec![];
    let toks: Vec<(usize, &str)> = {
        let mut v = vec![];
        let mut offset = 0;
        for t in tokens(s) {
            if let Some(pos) = s[offset..].find(t) {
                v.push((offset + pos, t));
                offset += pos + t.len();
            }
        }
        v
    };
    let mut current: Option<(String, usize)> = None;
    let depth_at = |pos: usize| -> i32 {
        s[..pos].chars().fold(0, |d, c| match c {
            '(' => d + 1,
            ')' => d - 1,
            _ => d,
        })
    };
    for (pos, t) in toks {
        let up = t.to_ascii_uppercase();
        if matches!(up.as_str(), "SET" | "ADD" | "REMOVE" | "DELETE") && depth_at(pos) == 0 {
            if let Some((kw, start)) = current.take() {
                clauses.push((kw, s[start..pos].to_string()));
            }
            current = Some((up, pos + t.len()));
        }
    }
    if let Some((kw, start)) = current {
        clauses.push((kw, s[start..].to_string()));
    }
    for (kw, body) in clauses {
        for part in split_top(&body, ',') {
            match kw.as_str() {
                "SET" => {
                    let Some((lhs, rhs)) = part.split_once('=') else {
                        continue;
                    };
                    let path = lhs.trim().to_string();
                    let rhs = rhs.trim();
                    let phs = placeholders(rhs);
                    let lower = rhs.to_ascii_lowercase();
                    let refs_self = tokens(rhs).contains(&path.as_str());
                    let value = if lower.starts_with("if_not_exists") {
                        SetValue::IfNotExists(phs)
                    } else if lower.starts_with("list_append") && refs_self {
                        SetValue::ListAppend(phs)
                    } else if refs_self && (rhs.contains('+') || rhs.contains('-')) {
                        SetValue::SelfArith(phs)
                    } else if phs.len() == 1 && rhs == phs[0] {
                        SetValue::Placeholder(phs[0].clone())
                    } else {
                        SetValue::Other(phs)
                    };
                    actions.push(Action::Set {
                        path,
                        value,
                        rhs: rhs.to_string(),
                    });
                }
                "ADD" | "DELETE" => {
                    let mut it = part.split_whitespace();
                    let (Some(path), Some(ph)) = (it.next(), it.next()) else {
                        continue;
                    };
                    let (path, placeholder) = (path.to_string(), ph.to_string());
                    actions.push(if kw == "ADD" {
                        Action::Add { path, placeholder }
                    } else {
                        Action::Delete { path, placeholder }
                    });
                }
                _ => actions.push(Action::Remove {
                    path: part.to_string(),
                }),
            }
        }
    }
    actions
}

/// What a condition expression tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// Attribute paths it compares or tests (names, `#n` placeholders unresolved).
    pub attrs: Vec<String>,
    /// Paths under `attribute_not_exists(..)`.
    pub not_exists: Vec<String>,
    /// Paths under `attribute_exists(..)`.
    pub exists: Vec<String>,
}

const FUNCTIONS: &[&str] = &[
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "and",
    "or",
    "not",
    "between",
    "in",
];

impl Condition {
    /// It compares a stored value or requires absence: only so many writes can pass it.
    /// `attribute_exists` alone lets every request through.
    pub fn limits(&self) -> bool {
        !self.attrs.is_empty() || !self.not_exists.is_empty()
    }
}

pub fn parse_condition(s: &str) -> Condition {
    let mut c = Condition::default();
    let toks = tokens(s);
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let lower = t.to_ascii_lowercase();
        if lower == "attribute_not_exists" || lower == "attribute_exists" {
            if let Some(next) = toks.get(i + 1) {
                if lower == "attribute_not_exists" {
                    c.not_exists.push(next.to_string());
                } else {
                    c.exists.push(next.to_string());
                }
                i += 2;
                continue;
            }
        }
        if !t.starts_with(':')
            && !FUNCTIONS.contains(&lower.as_str())
            && !t.chars().all(|c| c.is_ascii_digit())
        {
            c.attrs.push(t.to_string());
        }
        i += 1;
    }
    c
}

/// Attribute names that carry an item's version.
pub fn is_version_attr(name: &str) -> bool {
    let n = name.trim_start_matches('#').to_ascii_lowercase();
    [
        "version",
        "etag",
        "revision",
        "rev",
        "updated_at",
        "updatedat",
        "modified_at",
        "seq",
        "lock",
    ]
    .iter()
    .any(|v| n == *v || n.ends_with(&format!("_{v}")))
        || n == "ver"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_expressions() {
        let a = parse_update("SET balance = balance - :amt, #n = :name ADD visits :one REMOVE tmp");
        assert_eq!(
            a,
            vec![
                Action::Set {
                    path: "balance".into(),
                    value: SetValue::SelfArith(vec![":amt".into()]),
                    rhs: "balance - :amt".into(),
                },
                Action::Set {
                    path: "#n".into(),
                    value: SetValue::Placeholder(":name".into()),
                    rhs: ":name".into(),
                },
                Action::Add {
                    path: "visits".into(),
                    placeholder: ":one".into()
                },
                Action::Remove { path: "tmp".into() },
            ]
        );
        let b = parse_update("set c = if_not_exists(c, :zero) + :d, l = list_append(l, :x)");
        assert!(matches!(
            b[0],
            Action::Set {
                value: SetValue::IfNotExists(_),
                ..
            }
        ));
        assert!(matches!(
            b[1],
            Action::Set {
                value: SetValue::ListAppend(_),
                ..
            }
        ));
    }

    #[test]
    fn conditions() {
        let c = parse_condition("attribute_not_exists(pk) OR (#v = :v AND balance >= :amt)");
        assert_eq!(c.not_exists, vec!["pk"]);
        assert_eq!(c.attrs, vec!["#v", "balance"]);
        let d = parse_condition("attribute_exists(id)");
        assert_eq!(d.exists, vec!["id"]);
        assert!(d.attrs.is_empty());
        // Only a comparison or a required absence limits how many writes pass.
        assert!(!d.limits());
        assert!(c.limits());
        assert!(parse_condition("attribute_not_exists(redeemed_at)").limits());
    }
}
