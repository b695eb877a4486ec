//! Parsing the attribute's arguments: `("name", crate = path)`.

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::{Error, Ident, Lit, LitStr, Path, Token};

use crate::check;
use crate::push;

/// What the attribute's arguments say.
pub(crate) struct Args {
    /// The entry's name, if one was given.
    pub(crate) name: Option<LitStr>,
    /// `crate = path`: where the runtime crate is, if not at `::reexec`.
    pub(crate) krate: Option<Path>,
}

/// Parses `("name", crate = path)`, in any order, each part optional. Goes on past a bad
/// argument so that every mistake is reported at once.
pub(crate) fn args(input: ParseStream) -> syn::Result<(Args, Option<Error>)> {
    let mut args = Args {
        name: None,
        krate: None,
    };
    let mut errors = None;
    while !input.is_empty() {
        if let Err(error) = arg(input, &mut args) {
            push(&mut errors, error);
            // Skip the rest of this argument.
            while !input.is_empty() && !input.peek(Token![,]) {
                input.parse::<TokenTree>()?;
            }
        }
        if input.is_empty() {
            break;
        }
        if input.parse::<Option<Token![,]>>()?.is_none() {
            push(
                &mut errors,
                input.error(
                    "expected `,` between the arguments, as in \
                     #[reexec::entry(\"name\", crate = path::to::reexec)]",
                ),
            );
            // Nothing past a missing comma can be trusted: report what we have.
            input.parse::<TokenStream>()?;
        }
    }
    Ok((args, errors))
}

fn arg(input: ParseStream, args: &mut Args) -> syn::Result<()> {
    if input.peek(Lit) {
        let lit: Lit = input.parse()?;
        let Lit::Str(name) = lit else {
            return Err(Error::new_spanned(
                lit,
                "the entry name must be a string literal, e.g. #[reexec::entry(\"name\")]",
            ));
        };
        if args.name.is_some() {
            return Err(Error::new_spanned(
                name,
                "an entry has a single name; remove this one",
            ));
        }
        check::name(&name)?;
        args.name = Some(name);
        return Ok(());
    }
    if input.peek(Ident::peek_any) {
        let key = input.call(Ident::parse_any)?;
        if key == "crate" && !input.peek(Token![=]) {
            return Err(Error::new_spanned(
                &key,
                "`crate` takes the path of the reexec crate: write `crate = path::to::reexec`",
            ));
        }
        if !input.peek(Token![=]) {
            return Err(Error::new_spanned(
                &key,
                format!(
                    "the entry name must be a string literal: write #[reexec::entry(\"{}\")]",
                    key.unraw()
                ),
            ));
        }
        input.parse::<Token![=]>()?;
        if key != "crate" {
            return Err(Error::new_spanned(
                &key,
                format!(
                    "unknown option `{key}`; the only option is `crate = path::to::reexec`, \
                     for a crate that re-exports reexec"
                ),
            ));
        }
        // Accept `crate = "path"` too, as `#[tokio::main(crate = "…")]` takes it.
        let path = if input.peek(LitStr) {
            input.parse::<LitStr>()?.parse_with(Path::parse_mod_style)?
        } else {
            input.call(Path::parse_mod_style)?
        };
        if args.krate.is_some() {
            return Err(Error::new_spanned(key, "`crate` set multiple times"));
        }
        args.krate = Some(path);
        return Ok(());
    }
    Err(input.error(
        "expected the entry name as a string literal or `crate = path`, \
         e.g. #[reexec::entry(\"name\")]",
    ))
}
