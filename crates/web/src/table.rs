//! Tables for every component's list pages: sorted by any column (a link in its
//! heading, `?sort=KEY&dir=asc|desc`), paged (`?page=N`), exported as CSV
//! (`?format=csv`, the same rows in the same order, all pages). All of it is done on
//! the server from the query string, so it works without script; the other query
//! parameters (filters) are kept in every link.

use crate::Lang;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Characters that make a spreadsheet read a cell as a formula (CSV injection).
pub const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r', '\''];

/// Prefixes `'` to a cell a spreadsheet would run as a formula (`=HYPERLINK(…)`).
pub fn csv_cell(s: &str) -> String {
    if s.starts_with(FORMULA_START) { format!("'{s}") } else { s.to_string() }
}

/// What a column sorts by.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum SortKey {
    /// Nothing: sorts after every value.
    None,
    /// A number (times, counts, percentages).
    Num(f64),
    /// Text.
    Text(String),
}

impl SortKey {
    fn cmp(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::None, SortKey::None) => Ordering::Equal,
            (SortKey::None, _) => Ordering::Greater,
            (_, SortKey::None) => Ordering::Less,
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (a, b) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        }
    }
}

type Cell<'a, R> = Box<dyn Fn(&R) -> Markup + 'a>;
type Text<'a, R> = Box<dyn Fn(&R) -> String + 'a>;
type Key<'a, R> = Box<dyn Fn(&R) -> SortKey + 'a>;

/// How a column sorts, if it does ([`text`], [`num`]).
pub type SortBy<'a, R> = Option<Key<'a, R>>;

struct Column<'a, R> {
    key: &'static str,
    ja: &'static str,
    en: &'static str,
    class: Option<&'static str>,
    /// Only in the CSV export (e.g. ids, the UTC time), not on the page.
    csv_only: bool,
    cell: Cell<'a, R>,
    text: Text<'a, R>,
    sort: SortBy<'a, R>,
}

/// The sort, page and format a request asks for.
#[derive(Clone, Debug, Default)]
pub struct TableQuery {
    sort: Option<String>,
    desc: bool,
    page: usize,
    csv: bool,
    /// Every other parameter, kept in links.
    rest: BTreeMap<String, String>,
}

impl TableQuery {
    /// Reads `sort`, `dir`, `page` and `format` from the query; the rest is kept. A page
    /// that is not a number is the first.
    pub fn from_query<'q>(q: impl IntoIterator<Item = (&'q String, &'q String)>) -> TableQuery {
        let mut t = TableQuery::default();
        for (k, v) in q {
            match k.as_str() {
                "sort" => t.sort = Some(v.clone()).filter(|s| !s.is_empty()),
                "dir" => t.desc = v == "desc",
                "page" => t.page = v.parse::<usize>().unwrap_or(1).saturating_sub(1),
                "format" => t.csv = v == "csv",
                _ => {
                    t.rest.insert(k.clone(), v.clone());
                }
            }
        }
        t
    }

    /// Whether the CSV export is asked for.
    pub fn wants_csv(&self) -> bool {
        self.csv
    }

    /// The value of a parameter other than sort, dir, page and format (a filter, a
    /// keyset cursor).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.rest.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A link to `path` with the filters and the sort of this query, `extra` added
    /// (replacing parameters of the same name) and the parameters in `drop` left out.
    fn link_without(&self, path: &str, extra: &[(&str, String)], drop: &[&str]) -> String {
        let mut params: Vec<(String, String)> =
            self.rest.iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k) && !drop.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(s) = &self.sort
            && !extra.iter().any(|(k, _)| *k == "sort")
        {
            params.push(("sort".into(), s.clone()));
            params.push(("dir".into(), if self.desc { "desc" } else { "asc" }.into()));
        }
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        match serde_urlencoded::to_string(&params) {
            Ok(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path.to_string(),
        }
    }

    fn link(&self, path: &str, extra: &[(&str, String)]) -> String {
        self.link_without(path, extra, &[])
    }
}

/// Pages kept by the caller: a keyset cursor over a store query, for logs too long to
/// load whole (the audit log, events).
struct Keyset {
    /// The query parameter of the cursor (`before`, `cursor`).
    param: &'static str,
    /// The cursor of the next page, if there is one.
    next: Option<String>,
}

/// A table of `rows` with columns added by [`Table::column`].
pub struct Table<'a, R> {
    path: &'static str,
    file: &'static str,
    page_size: usize,
    class: &'static str,
    columns: Vec<Column<'a, R>>,
    default_sort: Option<(&'static str, bool)>,
    row_class: Option<Text<'a, R>>,
    keyset: Option<Keyset>,
    csv_path: Option<&'static str>,
}

impl<'a, R> Table<'a, R> {
    /// A table on the page at `path`, exported as `file`.
    pub fn new(path: &'static str, file: &'static str) -> Self {
        Table { path, file, page_size: 50, class: "", columns: Vec::new(), default_sort: None, row_class: None, keyset: None, csv_path: None }
    }

    /// Rows per page (default 50).
    pub fn page_size(self, n: usize) -> Self {
        Table { page_size: n.max(1), ..self }
    }

    /// The table's CSS class.
    pub fn class(self, class: &'static str) -> Self {
        Table { class, ..self }
    }

    /// The order when the request names none: a column key, descending or not.
    pub fn default_sort(self, key: &'static str, desc: bool) -> Self {
        Table { default_sort: Some((key, desc)), ..self }
    }

    /// Pages by a keyset cursor the caller follows: the rows given are one page, sorted
    /// within it; the pager links to the first page and to `next` (the cursor of the
    /// next page, in the query parameter `param`). The CSV export leaves the cursor
    /// out: it has every matching row.
    pub fn keyset(self, param: &'static str, next: Option<String>) -> Self {
        Table { keyset: Some(Keyset { param, next }), ..self }
    }

    /// Where the CSV link goes instead of `?format=csv` on the page: an export of its
    /// own (e.g. one that is audited, or one that re-imports), given the same filters
    /// and sort.
    pub fn csv_path(self, path: &'static str) -> Self {
        Table { csv_path: Some(path), ..self }
    }

    /// Gives each row a CSS class (e.g. its state, for colour and for tests).
    pub fn row_class(self, f: impl Fn(&R) -> String + 'a) -> Self {
        Table { row_class: Some(Box::new(f)), ..self }
    }

    /// Adds a column: its key (in `?sort=`), heading, cell, CSV text and sort key.
    pub fn column(
        mut self,
        key: &'static str,
        (ja, en): (&'static str, &'static str),
        cell: impl Fn(&R) -> Markup + 'a,
        text: impl Fn(&R) -> String + 'a,
        sort: SortBy<'a, R>,
    ) -> Self {
        self.columns.push(Column { key, ja, en, class: None, csv_only: false, cell: Box::new(cell), text: Box::new(text), sort });
        self
    }

    /// Adds a column of plain text: the same text is shown, exported and sorted by.
    pub fn text_column(self, key: &'static str, heading: (&'static str, &'static str), f: impl Fn(&R) -> String + 'a) -> Self
    where
        R: 'a,
    {
        let f = std::rc::Rc::new(f);
        let (cell, csv, sort) = (f.clone(), f.clone(), f);
        self.column(key, heading, move |r: &R| html! { (cell(r)) }, move |r| csv(r), text(move |r: &R| sort(r)))
    }

    /// Gives the last column a CSS class (e.g. `nowrap`).
    pub fn nowrap(mut self) -> Self {
        if let Some(c) = self.columns.last_mut() {
            c.class = Some("nowrap");
        }
        self
    }

    /// Leaves the last column off the page: it is only in the CSV export.
    pub fn csv_only(mut self) -> Self {
        if let Some(c) = self.columns.last_mut() {
            c.csv_only = true;
        }
        self
    }

    /// The rows in the order the query asks for (all pages), for an export of its own.
    pub fn ordered<'r>(&self, rows: &'r [R], q: &TableQuery) -> Vec<&'r R> {
        self.sorted(rows, q).0
    }

    fn sorted<'r>(&self, rows: &'r [R], q: &TableQuery) -> (Vec<&'r R>, Option<(&'static str, bool)>) {
        let mut out: Vec<&R> = rows.iter().collect();
        let wanted = q.sort.as_deref().map(|s| (s, q.desc)).or(self.default_sort);
        let active = wanted.and_then(|(key, desc)| self.columns.iter().find(|c| c.key == key && c.sort.is_some()).map(|c| (c, desc)));
        if let Some((col, desc)) = active
            && let Some(sort) = &col.sort
        {
            // A stable sort: rows with equal keys keep the store's order.
            out.sort_by(|a, b| {
                let o = sort(a).cmp(&sort(b));
                if desc { o.reverse() } else { o }
            });
        }
        (out, active.map(|(c, d)| (c.key, d)))
    }

    /// Renders the page of rows the query asks for, with sortable headings, the pager
    /// and the CSV link.
    pub fn render(&self, l: Lang, rows: &[R], q: &TableQuery) -> Markup {
        let (sorted, active) = self.sorted(rows, q);
        let (page, pages, start, shown) = match self.keyset {
            Some(_) => (0, 1, 0, &sorted[..]),
            None => {
                let pages = sorted.len().div_ceil(self.page_size).max(1);
                let page = q.page.min(pages - 1);
                let start = page * self.page_size;
                (page, pages, start, &sorted[start.min(sorted.len())..(start + self.page_size).min(sorted.len())])
            }
        };
        let columns: Vec<&Column<'a, R>> = self.columns.iter().filter(|c| !c.csv_only).collect();
        let cursor = self.keyset.as_ref().map(|k| k.param);
        let sort_title = cursor.map(|_| l.t("このページの行を並べ替えます", "Sorts the rows of this page"));
        let csv_href = match self.csv_path {
            Some(p) => q.link_without(p, &[], &[cursor.unwrap_or("")]),
            None => q.link_without(self.path, &[("format", "csv".into())], &[cursor.unwrap_or("")]),
        };
        html! {
            table class=(self.class) {
                thead { tr { @for c in &columns {
                    @let state = active.filter(|(k, _)| *k == c.key).map(|(_, d)| d);
                    th class=[c.class] aria-sort=(match state { Some(true) => "descending", Some(false) => "ascending", None => "none" }) {
                        @if c.sort.is_some() {
                            a.sort href=(q.link(self.path, &[("sort", c.key.to_string()), ("dir", if state == Some(false) { "desc".into() } else { "asc".into() })])) title=[sort_title] {
                                (l.t(c.ja, c.en))
                                @match state { Some(true) => " ▼", Some(false) => " ▲", None => "" }
                            }
                        } @else { (l.t(c.ja, c.en)) }
                    }
                } } }
                tbody { @for r in shown { tr class=[self.row_class.as_ref().map(|f| f(r))] { @for c in &columns { td class=[c.class] { ((c.cell)(r)) } } } } }
            }
            nav.pager aria-label=(l.t("ページ", "Pages")) {
                @match &self.keyset {
                    Some(k) => {
                        span.muted { (shown.len()) (l.t(" 件を表示", " rows shown")) }
                        @if q.param(k.param).is_some() { " " a href=(q.link_without(self.path, &[], &[k.param])) rel="first" { (l.t("← 最初のページ", "← First page")) } }
                        @if let Some(n) = &k.next { " " a href=(q.link(self.path, &[(k.param, n.clone())])) rel="next" { (l.t("次へ →", "Next →")) } }
                    }
                    None => {
                        span.muted {
                            @if sorted.is_empty() { (l.t("0 件", "0 rows")) }
                            @else { (start + 1) "–" (start + shown.len()) (l.t(" 件 / 全 ", " of ")) (sorted.len()) (l.t(" 件", " rows")) }
                        }
                        @if page > 0 { " " a href=(q.link(self.path, &[("page", page.to_string())])) rel="prev" { (l.t("← 前へ", "← Previous")) } }
                        @if page + 1 < pages { " " a href=(q.link(self.path, &[("page", (page + 2).to_string())])) rel="next" { (l.t("次へ →", "Next →")) } }
                    }
                }
                " " a.button href=(csv_href) download=(self.file) { (l.t("CSV 出力", "Export CSV")) }
            }
        }
    }

    /// Returns every row (all pages) in the query's order as a CSV download, headings
    /// in the person's language, cells guarded against formulas.
    pub fn csv(&self, l: Lang, rows: &[R], q: &TableQuery) -> Response {
        let (sorted, _) = self.sorted(rows, q);
        let mut out = String::from("\u{feff}");
        let line = |cells: Vec<String>| cells.iter().map(|c| quote(&csv_cell(c))).collect::<Vec<_>>().join(",") + "\r\n";
        out.push_str(&line(self.columns.iter().map(|c| l.t(c.ja, c.en).to_string()).collect()));
        for r in sorted {
            out.push_str(&line(self.columns.iter().map(|c| (c.text)(r)).collect()));
        }
        ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", self.file))], out)
            .into_response()
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// A sort key of text.
pub fn text<'a, R>(f: impl Fn(&R) -> String + 'a) -> SortBy<'a, R> {
    Some(Box::new(move |r| SortKey::Text(mamori_core::search_fold(&f(r)))))
}

/// A sort key of a number (none sorts last).
pub fn num<'a, R>(f: impl Fn(&R) -> Option<f64> + 'a) -> SortBy<'a, R> {
    Some(Box::new(move |r| f(r).map(SortKey::Num).unwrap_or(SortKey::None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table<'a>() -> Table<'a, (String, i64)> {
        Table::new("/things", "things.csv")
            .page_size(2)
            .column("name", ("名前", "Name"), |r: &(String, i64)| html! { (r.0) }, |r| r.0.clone(), text(|r: &(String, i64)| r.0.clone()))
            .column("n", ("数", "N"), |r: &(String, i64)| html! { (r.1) }, |r| r.1.to_string(), num(|r: &(String, i64)| Some(r.1 as f64)))
    }

    fn q(pairs: &[(&str, &str)]) -> TableQuery {
        let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        TableQuery::from_query(&m)
    }

    #[test]
    fn sorts_pages_and_keeps_filters() {
        let rows = vec![("b".to_string(), 2), ("a".to_string(), 10), ("c".to_string(), 1)];
        let page = table().render(Lang::Ja, &rows, &q(&[("sort", "n"), ("dir", "desc"), ("tenant", "x")])).into_string();
        let (a, b) = (page.find(">a<").unwrap(), page.find(">b<").unwrap());
        assert!(a < b && !page.contains(">c<"), "10, 2 on page 1: {page}");
        assert!(page.contains("1–2 件 / 全 3 件"));
        assert!(page.contains("page=2") && page.contains("tenant=x"), "the next page keeps the filter and the sort");
        let page2 = table().render(Lang::Ja, &rows, &q(&[("sort", "n"), ("dir", "desc"), ("page", "2")])).into_string();
        assert!(page2.contains(">c<") && !page2.contains(">a<"));
        let far = table().render(Lang::Ja, &rows, &q(&[("page", "999")])).into_string();
        assert!(far.contains("3–3"), "a page past the end shows the last");
    }

    #[test]
    fn csv_has_every_row_in_order_and_no_formulas() {
        let rows = vec![("=HYPERLINK(\"x\")".to_string(), 2), ("a,b".to_string(), 1)];
        let r = table().csv(Lang::En, &rows, &q(&[("sort", "n")]));
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
        let body = futures_body(r);
        assert_eq!(body, "\u{feff}Name,N\r\n\"a,b\",1\r\n\"'=HYPERLINK(\"\"x\"\")\",2\r\n");
    }

    #[test]
    fn keyset_pages_keep_the_cursor_out_of_the_export() {
        let rows = vec![("b".to_string(), 2), ("a".to_string(), 10), ("c".to_string(), 1)];
        let t = table().keyset("before", Some("41".into()));
        let page = t.render(Lang::Ja, &rows, &q(&[("before", "90"), ("actor", "x y"), ("sort", "name")])).into_string();
        assert!(page.contains(">a<") && page.contains(">c<"), "every row given is shown, the page size is the caller's: {page}");
        assert!(page.find(">a<").unwrap() < page.find(">b<").unwrap(), "sorted within the page");
        assert!(page.contains("3 件を表示"));
        assert!(page.contains(r#"href="/things?actor=x+y&amp;sort=name&amp;dir=asc&amp;before=41" rel="next""#), "the next page replaces the cursor: {page}");
        assert!(page.contains(r#"href="/things?actor=x+y&amp;sort=name&amp;dir=asc" rel="first""#), "{page}");
        assert!(page.contains(r#"href="/things?actor=x+y&amp;sort=name&amp;dir=asc&amp;format=csv""#), "the export has every page: {page}");
        let last = table().keyset("before", None).render(Lang::Ja, &rows, &q(&[])).into_string();
        assert!(!last.contains("rel=\"next\"") && !last.contains("rel=\"first\""), "{last}");
    }

    #[test]
    fn csv_only_columns_and_an_export_of_its_own() {
        let rows = vec![("a".to_string(), 1)];
        let t = table().text_column("id", ("ID", "ID"), |r: &(String, i64)| format!("id-{}", r.0)).csv_only().csv_path("/things/export.csv");
        let page = t.render(Lang::En, &rows, &q(&[("tenant", "t1"), ("page", "1")])).into_string();
        assert!(!page.contains("id-a") && !page.contains(">ID<"), "{page}");
        assert!(page.contains(r#"href="/things/export.csv?tenant=t1""#), "{page}");
        assert_eq!(futures_body(t.csv(Lang::En, &rows, &q(&[]))), "\u{feff}Name,N,ID\r\na,1,id-a\r\n");
        assert_eq!(t.ordered(&rows, &q(&[])).len(), 1);
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let b = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
            String::from_utf8(b.to_vec()).unwrap()
        })
    }
}
