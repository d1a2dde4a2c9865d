//! A REST resource path as API Gateway writes it: `/products/{id}`,
//! `/static/{proxy+}`, `/`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: exactly one path segment.
    Param(String),
    /// `{name+}`: one or more segments; only last.
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath {
    pub segments: Vec<Segment>,
}

/// How well a resource matched a request path; larger is more specific.
/// Compared segment by segment: literal beats `{param}` beats `{proxy+}`,
/// the order API Gateway applies.
pub type Specificity = Vec<u8>;

impl RoutePath {
    pub fn parse(text: &str) -> Result<RoutePath, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("must start with `/`".to_owned());
        };
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(RoutePath { segments });
        }
        let parts: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err("empty path segment (`//`)".to_owned());
            }
            if let Some(inner) = part.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return Err(format!("segment `{part}` opens `{{` without closing it"));
                };
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!(
                        "parameter `{part}` needs a name of letters, digits, `_` or `-`"
                    ));
                }
                if greedy && i + 1 != parts.len() {
                    return Err(format!(
                        "greedy parameter `{part}` must be the last segment"
                    ));
                }
                let taken = segments.iter().any(|s| match s {
                    Segment::Param(n) | Segment::Greedy(n) => n == name,
                    Segment::Literal(_) => false,
                });
                if taken {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                segments.push(if greedy {
                    Segment::Greedy(name.to_owned())
                } else {
                    Segment::Param(name.to_owned())
                });
            } else {
                // API Gateway's resource path part pattern.
                let ok = part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
                if !ok {
                    return Err(format!(
                        "segment `{part}` may only contain letters, digits, `.`, `_`, `-`, `:` or be a `{{param}}`"
                    ));
                }
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(RoutePath { segments })
    }

    /// Same resource in API Gateway's tree: parameter names do not count.
    pub fn same_resource(&self, other: &RoutePath) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    (Segment::Greedy(_), Segment::Greedy(_)) => true,
                    _ => false,
                })
    }

    /// Matches a request path (split on `/`, still percent-encoded, without
    /// the stage). Returns the specificity and the path parameters.
    pub fn matches(&self, path: &[&str]) -> Option<(Specificity, Vec<(String, String)>)> {
        let mut score = Vec::with_capacity(self.segments.len());
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(lit) => {
                    if path.get(i)? != lit {
                        return None;
                    }
                    score.push(3);
                }
                Segment::Param(name) => {
                    let value = path.get(i)?;
                    if value.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), (*value).to_owned()));
                    score.push(2);
                }
                Segment::Greedy(name) => {
                    let rest = path.get(i..)?;
                    if rest.is_empty() || rest.iter().all(|s| s.is_empty()) {
                        return None;
                    }
                    params.push((name.clone(), rest.join("/")));
                    score.push(1);
                    return Some((score, params));
                }
            }
        }
        (path.len() == self.segments.len()).then_some((score, params))
    }
}

impl fmt::Display for RoutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::Param(p) => write!(f, "/{{{p}}}")?,
                Segment::Greedy(p) => write!(f, "/{{{p}+}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RoutePath {
        RoutePath::parse(s).expect("valid path")
    }

    #[test]
    fn display_round_trips() {
        for s in ["/", "/products", "/products/{id}", "/static/{proxy+}"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(RoutePath::parse("products").is_err());
        assert!(RoutePath::parse("/a//b").is_err());
        assert!(RoutePath::parse("/{proxy+}/x").is_err());
        assert!(RoutePath::parse("/{id}/{id}").is_err());
        assert!(RoutePath::parse("/{}").is_err());
        assert!(RoutePath::parse("/a b").is_err());
    }

    #[test]
    fn greedy_needs_at_least_one_segment() {
        let g = p("/{proxy+}");
        assert!(g.matches(&[]).is_none());
        let (_, params) = g.matches(&["a", "b"]).expect("match");
        assert_eq!(params, vec![("proxy".to_owned(), "a/b".to_owned())]);
    }

    #[test]
    fn literal_is_more_specific_than_param() {
        let (lit, _) = p("/products/featured")
            .matches(&["products", "featured"])
            .expect("m");
        let (param, _) = p("/products/{id}")
            .matches(&["products", "featured"])
            .expect("m");
        let (greedy, _) = p("/{proxy+}")
            .matches(&["products", "featured"])
            .expect("m");
        assert!(lit > param && param > greedy);
    }
}
