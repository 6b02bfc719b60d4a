//! Where a location in a heap snapshot really is.
//!
//! A snapshot names scripts and 1-based positions in them (as heapsnap's
//! `SourceLocation` prints them). In a real service those point into
//! `node_modules` or into generated JavaScript (`dist/*.js`, a bundle, a
//! minified file) rather than at what the user wrote. This crate answers
//! the three questions a leak report needs, and it may read files to do so
//! (diagnose stays free of I/O):
//!
//! - **Which package** ([`Packages`], [`package_in_path`], [`classify`]):
//!   name and version from the innermost `node_modules/<name>` (scoped and
//!   pnpm store layouts too) and that package's `package.json`; the name
//!   alone when the files are not on this machine.
//! - **Which original line** ([`SourceMaps`]): follows `//# sourceMappingURL=`
//!   (file or inline `data:` URL) with the `sourcemap` crate, maps positions
//!   to the original source, line, column and name, names a bundled
//!   dependency from the map's `sources`, and recovers minified function and
//!   class names. [`Rebase`] finds the files of a snapshot taken elsewhere.
//! - **Which known mistake** ([`Library`]): a data table of leak-prone uses
//!   of popular packages, recognised on a retainer path by package plus
//!   class/field signature, each with its specific fix.

mod library;
mod maps;
mod package;
mod rebase;

pub use library::{steps_from_json, user_handle, Library, LibraryEntry, LibraryError, LibraryMatch, Names, PathStep, Sig, BUILTIN};
pub use maps::{MapError, MappedLocation, SourceMaps};
pub use package::{classify, package_in_path, script_path, CodeKind, Package, Packages};
pub use rebase::Rebase;
