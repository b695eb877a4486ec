//! The code the attribute generates: the user's function, unchanged, and the static that
//! registers it in reexec's distributed slice.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{ItemFn, LitStr, ReturnType, Type};

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
            let call = parenthesized(TokenStream::new(), last);
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

/// Whether `ty` is `!`, possibly as a `macro_rules!` fragment.
fn is_never(ty: &Type) -> bool {
    match ty {
        Type::Never(_) => true,
        Type::Group(group) => is_never(&group.elem),
        _ => false,
    }
}
