namespace Opterius.Web.Components.Pages.Accounts;

public enum BulkAction { Suspend, Unsuspend, Delete }
