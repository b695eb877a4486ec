//! Procedural macros of the [`reexec`](https://docs.rs/reexec) crate.
//!
//! Use them through `reexec` — write `#[reexec::entry]` — and depend on `reexec` alone; the
//! full documentation lives there. The code generated here names only paths under
//! `reexec::__private`, which is why the two crates are pinned to the same version.
//!
//! The attribute works in three steps, each in a module of its own: `parse` reads its
//! arguments, `check` refuses what the runtime cannot carry or call, and `expand` writes
//! the registration.

mod check;
mod expand;
mod parse;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::ToTokens;
use syn::parse::Parser;
use syn::{Error, Item, ItemFn};

/// Registers a function as a reexec entry. Use it as `#[reexec::entry]` or
/// `#[reexec::entry("name")]`; see `reexec::entry` for the documentation.
#[proc_macro_attribute]
pub fn entry(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match entry_attribute(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        Err(error) => token_stream_with_error(without_variadic(item), error).into(),
    }
}

/// Parses and checks the arguments and the item, and expands them only if nothing was
/// wrong; otherwise every error found, combined.
fn entry_attribute(args: TokenStream2, item: TokenStream2) -> Result<TokenStream2, Error> {
    let mut errors = None;
    let args = match parse::args.parse2(args) {
        Ok((args, arg_errors)) => {
            if let Some(error) = arg_errors {
                push(&mut errors, error);
            }
            Some(args)
        }
        Err(error) => {
            push(&mut errors, error);
            None
        }
    };
    let function = match syn::parse2::<Item>(item) {
        Ok(Item::Fn(function)) => {
            if let Err(error) = check::signature(&function) {
                push(&mut errors, error);
            }
            Some(function)
        }
        Ok(other) => {
            push(&mut errors, check::not_a_function(&other));
            None
        }
        Err(error) => {
            push(&mut errors, error);
            None
        }
    };
    if let Some(errors) = errors {
        return Err(errors);
    }
    let (Some(args), Some(function)) = (args, function) else {
        unreachable!("a missing part always comes with an error");
    };
    Ok(expand::entry(&args, &function))
}

/// Adds `error` to the errors found so far.
fn push(errors: &mut Option<Error>, error: Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

/// The item with a variadic `...` taken out of its parameters, since rustc would otherwise
/// add its own errors about `...` to ours; any other item, unchanged.
fn without_variadic(item: TokenStream2) -> TokenStream2 {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(mut function) if function.sig.variadic.is_some() => {
            function.sig.variadic = None;
            function.into_token_stream()
        }
        _ => item,
    }
}

/// The user's item unchanged, followed by the error: the item still exists for the rest of
/// the crate, so one mistake gives one message rather than a cascade of "not found".
fn token_stream_with_error(mut item: TokenStream2, error: Error) -> TokenStream2 {
    item.extend(error.into_compile_error());
    item
}

#[cfg(test)]
mod fuzz {
    //! Bounded property tests of what parses outside input: the attribute's arguments.
    use super::*;
    use proc_macro2::Span;
    use proptest::prelude::*;
    use quote::quote;
    use syn::LitStr;

    fn is_valid_name(name: &str) -> bool {
        !name.is_empty()
            && !name.contains('/')
            && !name.contains('\0')
            && name != "."
            && name != ".."
    }

    proptest! {
        #[test]
        fn a_name_is_accepted_exactly_when_argv0_can_carry_and_match_it(name in "\\PC{0,12}|[./\0a]{0,3}") {
            let literal = LitStr::new(&name, Span::call_site());
            let expanded = entry_attribute(quote!(#literal), quote!(fn child() {}));
            prop_assert_eq!(expanded.is_ok(), is_valid_name(&name), "{:?}", name);
        }

        #[test]
        fn arbitrary_attribute_arguments_never_panic(text in "\\PC{0,40}") {
            if let Ok(tokens) = text.parse::<TokenStream2>() {
                let _ = entry_attribute(tokens, quote!(fn child() {}));
            }
        }
    }
}
