//! The page, embedded at build time so `haq ui` works with no network and no files beside
//! the binary. The charts are the page's own SVG code: no JavaScript library is vendored.

pub const INDEX: &str = include_str!("../assets/index.html");
pub const APP_JS: &str = include_str!("../assets/app.js");
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
