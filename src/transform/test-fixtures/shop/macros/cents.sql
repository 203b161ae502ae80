{% macro cents_to_units(column) %}({{ column }} / {{ var('payment_divisor') }}){% endmacro %}
