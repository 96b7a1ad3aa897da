//! The pages a person sees: signup, login and the dashboard.
