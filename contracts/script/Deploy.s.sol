// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DatasetRegistry} from "../src/DatasetRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {DealMarket} from "../src/DealMarket.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

interface VmScript {
    function startBroadcast() external;
    function stopBroadcast() external;
}

/// @notice Deploys and wires the six contracts with the deployer as admin
/// and every operational role (the engine's single-operator default; the
/// Rust engine does the same from the committed artifacts). Disputes need
/// no role: they are judged by juries drawn from ProofOfCompute's pool.
/// `forge script script/Deploy.s.sol --rpc-url $RPC --broadcast --use ./bin/solc`
contract Deploy {
    VmScript internal constant vm = VmScript(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (ProofOfCompute poc) {
        vm.startBroadcast();
        address me = msg.sender;
        NodeCertRegistry registry = new NodeCertRegistry(me, 1 ether, 7 days);
        DatasetRegistry datasets = new DatasetRegistry();
        ModelRegistry models = new ModelRegistry(me, datasets);
        DealMarket market = new DealMarket(me);
        AIJobManager manager = new AIJobManager(me, market, registry);
        // challenge period 1 h, min bond 0.1, slash 0.5, juror stake 1, jury of 3, vote phases of 1 h
        poc = new ProofOfCompute(me, manager, registry, market, 1 hours, 0.1 ether, 0.5 ether, 1 ether, 3, 1 hours);
        market.grantRole(market.ESCROW(), address(manager));
        market.grantRole(market.SETTLER(), address(poc));
        manager.grantRole(manager.PROVER(), address(poc));
        manager.grantRole(manager.SCHEDULER(), me);
        registry.grantRole(registry.SLASHER(), address(poc));
        registry.grantRole(registry.ATTESTOR(), me);
        models.grantRole(models.REGISTRAR(), me);
        vm.stopBroadcast();
    }
}
