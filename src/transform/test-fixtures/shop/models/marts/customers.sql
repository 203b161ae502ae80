select
    c.customer_id,
    c.first_name,
    c.last_name,
    count(o.order_id) as number_of_orders,
    coalesce(sum(o.amount), 0) as lifetime_value,
    min(o.order_date) as first_order
from {{ ref('stg_customers') }} as c
left join {{ ref('orders') }} as o using (customer_id)
group by all
