//! What the runtime cannot carry or call, refused with one message per mistake.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Error, FnArg, Item, ItemFn, LitStr, ReturnType, Signature, TraitItemFn, Type};

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
    } else if cfg!(feature = "typed") {
        typed(sig, &mut errors);
    } else if !sig.inputs.is_empty() {
        push(
            &mut errors,
            Error::new_spanned(
                &sig.inputs,
                "reexec entries take no arguments; read them with std::env::args() inside \
                 the entry (or enable reexec's `typed` feature for an entry that takes one \
                 value)",
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

/// The shape of a typed entry, with reexec's `typed` feature: no argument (a plain entry),
/// or one argument of an owned type, and a return type that can be sent back.
fn typed(sig: &Signature, errors: &mut Option<Error>) {
    if sig.inputs.len() > 1 {
        push(
            errors,
            Error::new_spanned(
                &sig.inputs,
                "a typed reexec entry takes one argument, the value its caller sends: put \
                 the values in a struct or a tuple, e.g. `fn entry((name, count): (String, \
                 u32))`",
            ),
        );
        return;
    }
    let Some(FnArg::Typed(input)) = sig.inputs.first() else {
        return;
    };
    if let Some(problem) = not_owned(&input.ty) {
        push(
            errors,
            Error::new_spanned(
                &input.ty,
                format!(
                    "a typed reexec entry's argument is sent from another process and \
                     deserialized there, so it must be an owned type: {problem}"
                ),
            ),
        );
    }
    if let ReturnType::Type(_, output) = &sig.output {
        let problem = if is_never(output) {
            Some("an entry that takes a value must return one (use `()` for none), not `!`")
        } else {
            not_owned(output)
        };
        if let Some(problem) = problem {
            push(
                errors,
                Error::new_spanned(
                    output,
                    format!(
                        "a typed reexec entry's return value is sent to another process, so \
                         it must be an owned type: {problem}"
                    ),
                ),
            );
        }
    }
}

/// Why `ty` cannot cross to another process as the value of a typed entry, if it can't.
fn not_owned(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Reference(_) => Some("take the value itself instead of a reference (`T`, not `&T`)"),
        Type::ImplTrait(_) => Some("name the type; `impl Trait` has no type to deserialize"),
        Type::Ptr(_) => Some("a pointer means nothing in another process"),
        Type::BareFn(_) => Some("a function pointer means nothing in another process"),
        Type::TraitObject(_) => Some("name the type; a trait object has no type to deserialize"),
        Type::Infer(_) => Some("name the type; `_` is not allowed here"),
        Type::Group(group) => not_owned(&group.elem),
        Type::Paren(paren) => not_owned(&paren.elem),
        _ => None,
    }
}

/// Whether `ty` is `!`, possibly as a `macro_rules!` fragment.
pub(crate) fn is_never(ty: &Type) -> bool {
    match ty {
        Type::Never(_) => true,
        Type::Group(group) => is_never(&group.elem),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use quote::quote;

    use crate::entry_attribute;

    #[test]
    fn one_argument_makes_a_typed_entry_only_with_the_feature() {
        let result = entry_attribute(
            quote!("child"),
            quote!(
                fn child(value: u32) -> u32 {
                    value
                }
            ),
        );
        if cfg!(feature = "typed") {
            assert!(result.is_ok());
        } else {
            let message = result.unwrap_err().to_string();
            assert!(
                message.contains("take no arguments") && message.contains("`typed` feature"),
                "{message}"
            );
        }
    }

    #[test]
    fn two_arguments_are_refused_either_way() {
        let result = entry_attribute(
            quote!("child"),
            quote!(
                fn child(a: u32, b: u32) {}
            ),
        );
        assert!(result.is_err());
    }
}
