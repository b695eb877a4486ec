//! Procedural macros of the [`reexec`](https://docs.rs/reexec) crate.
//!
//! Use them through `reexec` — write `#[reexec::entry]` — and depend on `reexec` alone; the
//! full documentation lives there. The code generated here names only paths under
//! `reexec::__private`, which is why the two crates are pinned to the same version.

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Group, Span, TokenStream as TokenStream2, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{
    Error, FnArg, Ident, Item, ItemFn, Lit, LitStr, Path, ReturnType, Token, TraitItemFn, Type,
};

/// Registers a function as a reexec entry. Use it as `#[reexec::entry]` or
/// `#[reexec::entry("name")]`; see `reexec::entry` for the documentation.
#[proc_macro_attribute]
pub fn entry(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        Err(error) => token_stream_with_error(without_variadic(item), error).into(),
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

/// What the attribute's arguments say.
struct Args {
    /// The entry's name, if one was given.
    name: Option<LitStr>,
    /// `crate = path`: where the runtime crate is, if not at `::reexec`.
    krate: Option<Path>,
}

/// Adds `error` to the errors found so far.
fn push(errors: &mut Option<Error>, error: Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

fn expand(args: TokenStream2, item: TokenStream2) -> Result<TokenStream2, Error> {
    let mut errors = None;
    let args = match parse_args.parse2(args) {
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
            if let Err(error) = check_signature(&function) {
                push(&mut errors, error);
            }
            Some(function)
        }
        Ok(other) => {
            push(&mut errors, not_a_function(&other));
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
    Ok(generate(&args, &function))
}

/// Parses `("name", crate = path)`, in any order, each part optional. Goes on past a bad
/// argument so that every mistake is reported at once.
fn parse_args(input: ParseStream) -> syn::Result<(Args, Option<Error>)> {
    let mut args = Args {
        name: None,
        krate: None,
    };
    let mut errors = None;
    while !input.is_empty() {
        if let Err(error) = parse_arg(input, &mut args) {
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
            input.parse::<TokenStream2>()?;
        }
    }
    Ok((args, errors))
}

fn parse_arg(input: ParseStream, args: &mut Args) -> syn::Result<()> {
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
        check_name(&name)?;
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

/// Rejects names that `argv[0]` cannot carry or that the child could never match.
fn check_name(name: &LitStr) -> syn::Result<()> {
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
fn check_signature(function: &ItemFn) -> syn::Result<()> {
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
fn not_a_function(item: &Item) -> Error {
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

fn head(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream2 {
    let mut tokens = keyword.to_token_stream();
    name.to_tokens(&mut tokens);
    tokens
}

/// The user's function, unchanged, and the static that registers it.
fn generate(args: &Args, function: &ItemFn) -> TokenStream2 {
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::reexec),
    };
    let ident = &function.sig.ident;
    let bare_name = ident.unraw().to_string();
    let name = match &args.name {
        Some(name) => LitStr::new(&name.value(), name.span()),
        None => LitStr::new(&bare_name, ident.span()),
    };
    // The function's own name, made a static's, so it differs from every other entry's
    // static in this scope as their functions' names differ; only two functions whose names
    // differ in ASCII case alone would clash, and rustc's `non_snake_case` already flags one
    // of them. Only ASCII is uppercased; other letters stay as written, hence the `allow`.
    let static_ident = format_ident!(
        "__REEXEC_ENTRY_{}",
        bare_name.to_ascii_uppercase(),
        span = ident.span()
    );
    // The wrapper must not shadow the function it calls.
    let run = if bare_name == "__reexec_run" {
        format_ident!("__reexec_run_entry")
    } else {
        format_ident!("__reexec_run")
    };
    let body = match &function.sig.output {
        ReturnType::Type(_, ty) if is_never(ty) => quote!(#ident()),
        // Every token of the call carries the return type's span, so that a type that is
        // not `Termination` is reported on it, rather than on the attribute.
        ReturnType::Type(_, ty) => {
            let mut tokens = ty.to_token_stream().into_iter().map(|token| token.span());
            let first = tokens.next().unwrap_or_else(Span::call_site);
            let last = tokens.last().unwrap_or(first);
            // A call's span runs from its first token to its closing parenthesis: these
            // calls start where the type starts and end where it ends.
            let krate = respan(krate.clone(), first);
            let mut ident = ident.clone();
            ident.set_span(first);
            let call = parenthesized(TokenStream2::new(), last);
            let call = parenthesized(quote!(#ident #call), last);
            quote_spanned!(first=> #krate::__private::report #call)
        }
        ReturnType::Default => quote!(#krate::__private::report(#ident())),
    };
    // An entry compiled out by `#[cfg]` must take its registration with it.
    let cfgs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"));
    quote! {
        #function

        #(#cfgs)*
        #[#krate::__private::linkme::distributed_slice(#krate::__private::ENTRIES)]
        // Makes linkme's generated code name our re-export, so that users need not depend on
        // linkme themselves. The option is documented only in linkme's issues (#54, #110).
        #[linkme(crate = #krate::__private::linkme)]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #static_ident: #krate::__private::Entry = #krate::__private::Entry::new(
            #name,
            ::core::file!(),
            ::core::line!(),
            {
                fn #run() -> #krate::__private::ExitCode {
                    #body
                }
                #run
            },
        );
    }
}

/// `(tokens)`, the parentheses spanned at `span`.
fn parenthesized(tokens: TokenStream2, span: Span) -> Group {
    let mut group = Group::new(Delimiter::Parenthesis, tokens);
    group.set_span(span);
    group
}

/// `tokens` with every token, nested ones included, given `span`.
fn respan(tokens: TokenStream2, span: Span) -> TokenStream2 {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// Whether `ty` is `!`, possibly as a `macro_rules!` fragment.
fn is_never(ty: &Type) -> bool {
    match ty {
        Type::Never(_) => true,
        Type::Group(group) => is_never(&group.elem),
        _ => false,
    }
}

#[cfg(test)]
mod fuzz {
    //! Bounded property tests of what parses outside input: the attribute's arguments.
    use super::*;
    use proptest::prelude::*;

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
            let expanded = expand(quote!(#literal), quote!(fn child() {}));
            prop_assert_eq!(expanded.is_ok(), is_valid_name(&name), "{:?}", name);
        }

        #[test]
        fn arbitrary_attribute_arguments_never_panic(text in "\\PC{0,40}") {
            if let Ok(tokens) = text.parse::<TokenStream2>() {
                let _ = expand(tokens, quote!(fn child() {}));
            }
        }
    }
}
