//! Resource and method selection, in API Gateway's order: the most
//! specific resource whose path matches (literal > `{param}` > `{proxy+}`,
//! segment by segment), then the exact method, then `ANY`. A path that
//! matches a resource lacking the method is not retried on a less specific
//! resource; API Gateway answers 403 Missing Authentication Token.

use crate::manifest::{Route, RoutePath};

pub struct RouteTable {
    routes: Vec<Route>,
}

pub enum RouteMatch<'a> {
    Found {
        route: &'a Route,
        /// Parameter name and value, still percent-encoded as in the path.
        params: Vec<(String, String)>,
    },
    /// A resource matches the path but has no such method (nor ANY).
    NoMethod {
        resource: &'a RoutePath,
    },
    NotFound,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> RouteTable {
        RouteTable { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// `segments` is the request path after the stage, split on `/`, with a
    /// trailing slash removed (API Gateway ignores it for matching).
    pub fn find(&self, method: &str, segments: &[&str]) -> RouteMatch<'_> {
        let mut best: Option<(Vec<u8>, &RoutePath)> = None;
        for route in &self.routes {
            if let Some((score, _)) = route.path.matches(segments)
                && best.as_ref().is_none_or(|(b, _)| score > *b)
            {
                best = Some((score, &route.path));
            }
        }
        let Some((_, resource)) = best else {
            return RouteMatch::NotFound;
        };
        let on_resource = || {
            self.routes
                .iter()
                .filter(|r| r.path.same_resource(resource))
        };
        let chosen = on_resource()
            .find(|r| r.method == method)
            .or_else(|| on_resource().find(|r| r.method == "ANY"));
        match chosen {
            Some(route) => {
                let params = route
                    .path
                    .matches(segments)
                    .map(|(_, p)| p)
                    .unwrap_or_default();
                RouteMatch::Found { route, params }
            }
            None => RouteMatch::NoMethod { resource },
        }
    }
}

/// Splits a request path (after the stage) for matching.
pub fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, &str, &str)]) -> RouteTable {
        RouteTable::new(
            routes
                .iter()
                .map(|(m, p, f)| Route {
                    method: (*m).to_owned(),
                    path: RoutePath::parse(p).expect("path"),
                    function: (*f).to_owned(),
                })
                .collect(),
        )
    }

    fn found(t: &RouteTable, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        match t.find(method, &split_path(path)) {
            RouteMatch::Found { route, params } => Some((route.function.clone(), params)),
            _ => None,
        }
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let t = table(&[
            ("GET", "/products/featured", "featured"),
            ("GET", "/products/{id}", "product"),
            ("ANY", "/{proxy+}", "catchall"),
        ]);
        assert_eq!(
            found(&t, "GET", "/products/featured")
                .map(|f| f.0)
                .as_deref(),
            Some("featured")
        );
        let (f, params) = found(&t, "GET", "/products/42").expect("match");
        assert_eq!(f, "product");
        assert_eq!(params, vec![("id".to_owned(), "42".to_owned())]);
        assert_eq!(
            found(&t, "GET", "/products/42/reviews")
                .map(|f| f.0)
                .as_deref(),
            Some("catchall")
        );
        // A method-less path is covered by the greedy resource.
        assert_eq!(
            found(&t, "GET", "/products").map(|f| f.0).as_deref(),
            Some("catchall")
        );
    }

    #[test]
    fn explicit_method_beats_any_and_missing_method_is_no_method() {
        let t = table(&[("ANY", "/orders", "any"), ("POST", "/orders", "post")]);
        assert_eq!(
            found(&t, "POST", "/orders").map(|f| f.0).as_deref(),
            Some("post")
        );
        assert_eq!(
            found(&t, "DELETE", "/orders").map(|f| f.0).as_deref(),
            Some("any")
        );
        let t = table(&[("GET", "/orders/{id}", "get")]);
        assert!(matches!(
            t.find("DELETE", &split_path("/orders/1")),
            RouteMatch::NoMethod { .. }
        ));
        assert!(matches!(
            t.find("GET", &split_path("/nope")),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn root_is_not_covered_by_greedy_and_trailing_slash_is_ignored() {
        let t = table(&[
            ("ANY", "/{proxy+}", "catchall"),
            ("GET", "/basket", "basket"),
        ]);
        assert!(matches!(
            t.find("GET", &split_path("/")),
            RouteMatch::NotFound
        ));
        assert_eq!(
            found(&t, "GET", "/basket/").map(|f| f.0).as_deref(),
            Some("basket")
        );
    }
}
