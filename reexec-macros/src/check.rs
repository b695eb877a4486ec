//! What the runtime cannot carry or call, refused with one message per mistake.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Error, FnArg, Item, ItemFn, LitStr, TraitItemFn};

use crate::push;

/// Rejects names that `argv[0]` cannot carry or that the child could never match.
pub(crate) fn name(name: &LitStr) -> syn::Result<()> {
    let value = name.value();
    let problem = if !name.suffix().is_empty() {
        "the entry name must be a plain string literal, without a suffix"
    } else if value.is_empty() {
        "the entry name must not be empty; give a name, or write #[reexec::entry] to use \
         the function's name"
    } else if value.contains('/') {
        "the entry name must not contain `/`: the child matches its entry against the part \
         of argv[0] after the last `/`, so this entry could never run"
    } else if value.contains('\0') {
        "the entry name must not contain a NUL byte: it is passed as argv[0], a C string"
    } else if value == "." || value == ".." {
        "the entry name must not be `.` or `..`: as argv[0] it reads as a directory; \
         choose another name"
    } else {
        return Ok(());
    };
    Err(Error::new_spanned(name, problem))
}

/// Everything about the signature that the runtime cannot call as `fn() -> impl Termination`.
pub(crate) fn signature(function: &ItemFn) -> syn::Result<()> {
    let sig = &function.sig;
    let mut errors = None;
    if let Some(token) = &sig.constness {
        push(
            &mut errors,
            Error::new_spanned(
                token,
                "reexec entries cannot be `const fn`: an entry only runs at run time, in the \
                 re-executed child; remove `const`",
            ),
        );
    }
    if let Some(token) = &sig.asyncness {
        push(
            &mut errors,
            Error::new_spanned(
                token,
                "reexec entries cannot be `async fn`: make the entry a plain `fn` and start \
                 the async runtime inside it (e.g. block_on the async code)",
            ),
        );
    }
    if let Some(token) = &sig.unsafety {
        push(
            &mut errors,
            Error::new_spanned(
                token,
                "reexec entries cannot be `unsafe fn`: the runtime calls them with no way to \
                 uphold a safety contract; make the function safe and put `unsafe` blocks \
                 inside it",
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        push(
            &mut errors,
            Error::new_spanned(
                abi,
                "reexec entries cannot declare an ABI: the runtime calls them as Rust \
                 functions; remove the `extern`",
            ),
        );
    }
    let params = &sig.generics.params;
    if !params.is_empty() {
        push(
            &mut errors,
            Error::new_spanned(
                &sig.generics,
                "reexec entries cannot be generic: the runtime calls them with no type, \
                 lifetime or const arguments; remove the generic parameters",
            ),
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        push(
            &mut errors,
            Error::new_spanned(
                where_clause,
                "reexec entries cannot have a `where` clause; remove it",
            ),
        );
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        push(
            &mut errors,
            Error::new_spanned(
                receiver,
                "reexec entries must be free functions, not methods: move the function out \
                 of the `impl` block and drop `self`",
            ),
        );
    } else if !sig.inputs.is_empty() {
        push(
            &mut errors,
            Error::new_spanned(
                &sig.inputs,
                "reexec entries take no arguments; read them with std::env::args() inside \
                 the entry",
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        push(
            &mut errors,
            Error::new_spanned(
                variadic,
                "reexec entries cannot be variadic; they take no arguments: read them with \
                 std::env::args() inside the entry",
            ),
        );
    }
    errors.map_or(Ok(()), Err)
}

/// The error for the attribute on anything but a function, pointed at the item's keyword
/// and name where there are ones.
pub(crate) fn not_a_function(item: &Item) -> Error {
    let (what, head) = match item {
        Item::Const(item) => ("a const", head(&item.const_token, &item.ident)),
        Item::Enum(item) => ("an enum", head(&item.enum_token, &item.ident)),
        Item::ExternCrate(item) => ("an extern crate", head(&item.extern_token, &item.ident)),
        Item::ForeignMod(item) => ("an extern block", item.abi.to_token_stream()),
        Item::Impl(item) => ("an impl block", head(&item.impl_token, &item.self_ty)),
        Item::Macro(item) => ("a macro", item.mac.path.to_token_stream()),
        Item::Mod(item) => ("a module", head(&item.mod_token, &item.ident)),
        Item::Static(item) => ("a static", head(&item.static_token, &item.ident)),
        Item::Struct(item) => ("a struct", head(&item.struct_token, &item.ident)),
        Item::Trait(item) => ("a trait", head(&item.trait_token, &item.ident)),
        Item::TraitAlias(item) => ("a trait alias", head(&item.trait_token, &item.ident)),
        Item::Type(item) => ("a type alias", head(&item.type_token, &item.ident)),
        Item::Union(item) => ("a union", head(&item.union_token, &item.ident)),
        Item::Use(item) => ("a use declaration", item.use_token.to_token_stream()),
        // A function without a body, as in a trait or an extern block.
        Item::Verbatim(tokens) => match syn::parse2::<TraitItemFn>(tokens.clone()) {
            Ok(function) => ("a function without a body", function.sig.to_token_stream()),
            Err(_) => ("this item", tokens.clone()),
        },
        _ => ("this item", item.to_token_stream()),
    };
    Error::new_spanned(
        head,
        format!(
            "#[reexec::entry] goes on a free function with a body, such as \
             `fn name() {{ … }}`, not on {what}"
        ),
    )
}

fn head(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    let mut tokens = keyword.to_token_stream();
    name.to_tokens(&mut tokens);
    tokens
}
