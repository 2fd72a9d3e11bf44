import type * as pulumi from "@pulumi/pulumi";

export declare function report(outputs: Record<string, pulumi.Output<unknown>>): Promise<void>;
