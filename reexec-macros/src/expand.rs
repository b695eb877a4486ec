//! The code the attribute generates: the user's function, unchanged, and the static that
//! registers it in reexec's distributed slice.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Type};

use crate::check::is_never;

use crate::parse::Args;

/// The user's function, unchanged, and the static that registers it.
pub(crate) fn entry(args: &Args, function: &ItemFn) -> TokenStream {
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
    // The static and the wrapper are items of the `const _` block below, in scope of the
    // call to the user's function: neither may take its name.
    let static_ident = not_named(&bare_name, "__REEXEC_ENTRY", ident.span());
    let run = not_named(&bare_name, "__reexec_run", Span::call_site());
    if let Some(FnArg::Typed(input)) = function.sig.inputs.first() {
        return typed(&krate, &name, function, &input.ty, &static_ident, &run);
    }
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
            let call = parenthesized(TokenStream::new(), last);
            let call = parenthesized(quote!(#ident #call), last);
            quote_spanned!(first=> #krate::__private::report #call)
        }
        ReturnType::Default => quote!(#krate::__private::report(#ident())),
    };
    let registration = registration(&krate, &name, &cfgs(function), &static_ident, &run, &body);
    quote! {
        #function
        #registration
    }
}

/// The `#[cfg]` attributes of `function`: an entry compiled out must take its registration
/// (and handle) with it.
fn cfgs(function: &ItemFn) -> Vec<&syn::Attribute> {
    function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .collect()
}

/// The static that registers `name` in reexec's distributed slice, with a wrapper `run`
/// whose body is `body`, under the function's `cfgs`.
///
/// Inside an anonymous `const` block the static's name is seen by nothing outside it, so
/// every entry can use the same one: no name to derive from the function's, and no clash
/// between functions whose names differ only in case. linkme collects such statics as any
/// other, from other crates too (tests/entry-lib, tests/ui-pass/entries.rs).
fn registration(
    krate: &TokenStream,
    name: &LitStr,
    cfgs: &[&syn::Attribute],
    static_ident: &Ident,
    run: &Ident,
    body: &TokenStream,
) -> TokenStream {
    quote! {
        #(#cfgs)*
        const _: () = {
            #[#krate::__private::linkme::distributed_slice(#krate::__private::ENTRIES)]
            // Makes linkme's generated code name our re-export, so that users need not
            // depend on linkme themselves. The option is documented only in linkme's issues
            // (#54, #110).
            #[linkme(crate = #krate::__private::linkme)]
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
        };
    }
}

/// A typed entry (one argument, reexec's `typed` feature): the user's function, its handle
/// — a type of the function's own name implementing `TypedEntry` — and the registration,
/// whose wrapper serves the call on the descriptors the parent gave.
fn typed(
    krate: &TokenStream,
    name: &LitStr,
    function: &ItemFn,
    input: &Type,
    static_ident: &Ident,
    run: &Ident,
) -> TokenStream {
    let ident = &function.sig.ident;
    let vis = &function.vis;
    let output = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.to_token_stream(),
        ReturnType::Default => quote!(()),
    };
    let cfgs = cfgs(function);
    // Spanned on the user's types, so that a type serde cannot carry is reported there.
    let input_check = quote_spanned!(input.span()=> #krate::__private::input_type::<#input>());
    let output_check = quote_spanned!(output.span()=> #krate::__private::output_type::<#output>());
    let serve = quote!(#krate::__private::serve(#name, #ident, #input_check, #output_check));
    let registration = registration(krate, name, &cfgs, static_ident, run, &serve);
    let doc = format!(
        "The typed handle of the entry `{}`: call it with \
         `reexec::call::<{ident}>(&input)` or `reexec::TypedCommand::new::<{ident}>()`.",
        name.value(),
    );
    quote! {
        #function

        // The function's name in the type namespace, where a function never is: the
        // handle needs no name of its own to learn.
        #(#cfgs)*
        #[doc = #doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #(#cfgs)*
        impl #krate::TypedEntry for #ident {
            type Input = #input;
            type Output = #output;
            const NAME: &'static str = #name;
        }

        #registration
    }
}

/// `name`, or `name_` when that is the user's function's name (`function`), which the item
/// would otherwise shadow.
fn not_named(function: &str, name: &str, span: Span) -> Ident {
    if function == name {
        format_ident!("{name}_", span = span)
    } else {
        format_ident!("{name}", span = span)
    }
}

/// `(tokens)`, the parentheses spanned at `span`.
fn parenthesized(tokens: TokenStream, span: Span) -> Group {
    let mut group = Group::new(Delimiter::Parenthesis, tokens);
    group.set_span(span);
    group
}

/// `tokens` with every token, nested ones included, given `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
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
