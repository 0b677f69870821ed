//! The `roster users` and `roster roles` commands: readable tables for people, `--json` for scripts.

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{GrantArgs, RoleAction, RoleKindArg, RolesArgs, UserAction, UsersArgs};
use crate::domain::{ListPermission, UserPermission};
use crate::service::{AccountService, IssuedToken, RoleInfo, RoleKind, UserInfo};
use crate::startup::connect_migrated;

/// Prints rows as aligned columns.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_users(users: &[UserInfo], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&users);
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.name.clone(),
                u.status.clone(),
                u.user_role.clone(),
                u.list_role.clone().unwrap_or_else(|| "-".into()),
                u.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "ID",
                "NAME",
                "STATUS",
                "USER ROLE",
                "LIST ROLE",
                "CREATED (UTC)"
            ],
            rows
        )
    );
    Ok(())
}

fn print_token(issued: &IssuedToken, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(issued);
    }
    print_users(std::slice::from_ref(&issued.user), false)?;
    println!(
        "\nToken for `{}` (shown only now; store it safely):\n{}\n\nAuthenticate with `-u {}:TOKEN` or `Authorization: token {}:TOKEN`.",
        issued.user.name, issued.token, issued.user.name, issued.user.name
    );
    Ok(())
}

fn print_roles(roles: &[RoleInfo], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&roles);
    }
    let rows = roles
        .iter()
        .map(|r| {
            let grants = if r.kind == RoleKind::User.as_str() {
                r.permissions.join(", ")
            } else {
                r.lists
                    .iter()
                    .map(|(list, perms)| format!("{list}: {}", perms.join("+")))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            vec![
                r.id.to_string(),
                r.name.clone(),
                r.kind.to_owned(),
                if grants.is_empty() {
                    "-".into()
                } else {
                    grants
                },
            ]
        })
        .collect();
    println!("{}", table(&["ID", "NAME", "KIND", "GRANTS"], rows));
    Ok(())
}

pub async fn users(args: UsersArgs) -> anyhow::Result<()> {
    let accounts = AccountService::new(connect_migrated(&args.database.settings()).await?);
    match args.action {
        UserAction::Create {
            name,
            role,
            list_role,
            admin,
        } => {
            if name == admin.admin_username {
                bail!("`{name}` is the admin's username; choose another name");
            }
            let issued = accounts
                .create_user(&name, &role, list_role.as_deref())
                .await?;
            print_token(&issued, args.json)
        }
        UserAction::List => print_users(&accounts.users().await?, args.json),
        UserAction::Disable { name } => {
            print_users(&[accounts.set_enabled(&name, false).await?], args.json)
        }
        UserAction::Enable { name } => {
            print_users(&[accounts.set_enabled(&name, true).await?], args.json)
        }
        UserAction::Delete { name } => {
            accounts.delete_user(&name).await?;
            if args.json {
                print_json(&serde_json::json!({ "deleted": name }))
            } else {
                println!("Deleted API user `{name}`.");
                Ok(())
            }
        }
        UserAction::RotateToken { name } => {
            print_token(&accounts.rotate_token(&name).await?, args.json)
        }
    }
}

async fn grant(
    accounts: &AccountService,
    args: GrantArgs,
    grant: bool,
) -> anyhow::Result<RoleInfo> {
    if let Ok(permission) = args.permission.parse::<UserPermission>() {
        if !args.lists.is_empty() {
            bail!("`{permission}` covers every list; drop --list");
        }
        return Ok(accounts
            .set_user_permissions(&args.role, &[permission], grant)
            .await?);
    }
    let permission: ListPermission = args.permission.parse().map_err(anyhow::Error::msg).context(
        "permissions are lists:get_all, lists:manage_all, subscribers:get_all, subscribers:get, subscribers:manage, subscribers:import (user roles), list:get, list:manage (list roles)",
    )?;
    Ok(accounts
        .set_list_permissions(&args.role, permission, &args.lists, grant)
        .await?)
}

pub async fn roles(args: RolesArgs) -> anyhow::Result<()> {
    let accounts = AccountService::new(connect_migrated(&args.database.settings()).await?);
    let role = match args.action {
        RoleAction::Create { name, kind } => {
            let kind = match kind {
                RoleKindArg::User => RoleKind::User,
                RoleKindArg::List => RoleKind::List,
            };
            accounts.create_role(&name, kind).await?
        }
        RoleAction::List => return print_roles(&accounts.roles().await?, args.json),
        RoleAction::Delete { name } => {
            accounts.delete_role(&name).await?;
            return if args.json {
                print_json(&serde_json::json!({ "deleted": name }))
            } else {
                println!("Deleted role `{name}`.");
                Ok(())
            };
        }
        RoleAction::Grant(grant_args) => grant(&accounts, grant_args, true).await?,
        RoleAction::Revoke(grant_args) => grant(&accounts, grant_args, false).await?,
    };
    print_roles(&[role], args.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let out = table(&["A", "LONG"], vec![vec!["xyz".into(), "1".into()]]);
        assert_eq!(out, "A    LONG\nxyz  1");
    }
}
