"""The Orderflow desktop agent: order notifications from the notification service shown as
native Linux notifications (D-Bus org.freedesktop.Notifications) that open the order."""
